module sandgate.dev/samples/auth

go 1.24

require sandgate.dev/pdk v0.0.0

replace sandgate.dev/pdk => ../../plugin-pdk/go
