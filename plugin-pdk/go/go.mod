module sandgate.dev/pdk

go 1.24
