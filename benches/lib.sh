# Shell helpers shared by benches/run.sh and benches/memory/run.sh (sourced).

# write_cloudmux_config DIR ACCESS SECRET REGION: writes DIR/cloudmux.toml, a
# cloudmux on a free loopback port with sled in DIR/meta, one account and one
# fs location in DIR/objects.
write_cloudmux_config() {
    cat >"$1/cloudmux.toml" <<EOC
[server]
listen = "127.0.0.1:0"
region = "$4"

[metadata]
engine = "sled"
path = "$1/meta"

[[accounts]]
name = "bench"
access_key = "$2"
secret_key = "$3"

[locations.local]
type = "fs"
path = "$1/objects"
default = true
EOC
}

# endpoint_from FILE PID [SECONDS]: prints the URL of the first
# "endpoint: URL" line process PID writes to FILE; fails if PID exits or
# SECONDS (default 30) pass first.
endpoint_from() {
    local ep
    for _ in $(seq $((${3:-30} * 10))); do
        ep=$(sed -nE 's/.*endpoint:[[:space:]]+(https?:\/\/[^[:space:]]+).*/\1/p' "$1" | sed -n 1p)
        if [ -n "$ep" ]; then echo "$ep"; return 0; fi
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
