module sandgate.dev/pdk/testdata/panic

go 1.24

require sandgate.dev/pdk v0.0.0

replace sandgate.dev/pdk => ../..
