#!/usr/bin/env bash
# What bucket versioning costs: PUT of new keys, PUT over existing keys and
# ListObjectVersions on a versioned bucket next to an unversioned one, on the
# `fs` location and on an `s3` location backed by moto, in one run.
#
# Usage:
#   benches/versioning/run.sh                        # release build; about 15 minutes
#   SKIP_BUILD=1 DURATION=3 ROUNDS=1 benches/versioning/run.sh
#   LOCATIONS=local WORKLOADS=put4k,over4k benches/versioning/run.sh
#
# What it does:
#   1. cargo build --release -p cloudmux -p cloudmux-bench (SKIP_BUILD=1 skips)
#   2. starts moto_server and `cloudmux serve` on free 127.0.0.1 ports, with
#      sled and two locations in a temp directory: `local` (fs, the default)
#      and `moto` (s3, target bucket cmx-versioning in moto)
#   3. per location, makes two bucket pairs with CreateBucket's
#      LocationConstraint naming the location: vb-LOC-plain (+ -list) and
#      vb-LOC-versioned (+ -list, versioning Enabled), and populates both the
#      same way, untimed (`cloudmux-bench load --setup-only`): 64 keys of
#      4 KiB and 64 of 1 MiB to overwrite, and LIST_KEYS keys in the -list
#      bucket, written LIST_WRITES times each in the versioned one (20,000
#      versions of 2,000 keys) and once in the plain one (2,000 null
#      versions; writing them again would only replace them)
#   4. per location, ROUNDS rounds; in each round every workload runs on the
#      plain and on the versioned bucket back to back for DURATION s
#      (`cloudmux-bench load --prepared`), plain first in odd rounds and
#      versioned first in even rounds, so that drift of the machine and what
#      one run leaves to the next (dirty pages, compaction) hit both alike
#   5. prints the table of medians over the rounds and the ratios
#      versioned/plain, and writes benches/results/versioning.txt and
#      versioning.json (every run's results too); per-run JSON and logs go
#      to benches/results/versioning-runs/
#
# Environment: DURATION (5 s per run), ROUNDS (3), CONCURRENCY (32),
# WORKLOADS (put4k,over4k,put1m,over1m,listver,list), LOCATIONS ("local
# moto"), LIST_KEYS (2000), LIST_WRITES (10), POPULATE_TIMEOUT (900 s per
# bucket), SKIP_BUILD=1, KEEP=1 (keep the temp directory), TMPDIR (where the
# data goes; a few GiB), MOTO_SERVER_BIN, PYTHON (python3).
# Exit status: 0 when every run had no error, 1 when some had errors, 2 on
# setup failures.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
# shellcheck source=../lib.sh
. "$ROOT/benches/lib.sh"
T0=$(date +%s)
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-32}
WORKLOADS=${WORKLOADS:-put4k,over4k,put1m,over1m,listver,list}
LOCATIONS=${LOCATIONS:-"local moto"}
LIST_KEYS=${LIST_KEYS:-2000}
LIST_WRITES=${LIST_WRITES:-10}
POPULATE_TIMEOUT=${POPULATE_TIMEOUT:-900}
PYTHON=${PYTHON:-python3}
ACCESS=AKIACMXBENCH00000001
SECRET=cmxbench-secret-00000000000000000000001
REGION=us-east-1
TARGET=cmx-versioning
OUT=$ROOT/benches/results
RUNS=$OUT/versioning-runs

log() { echo "==> [$(($(date +%s) - T0)) s] $*" >&2; }
die() { echo "versioning bench: $*" >&2; exit 2; }

# ---- binaries ----
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --release -p cloudmux -p cloudmux-bench"
    cargo build --release -p cloudmux -p cloudmux-bench
fi
BENCH=$ROOT/target/release/cloudmux-bench
CLOUDMUX=$ROOT/target/release/cloudmux
{ [ -x "$BENCH" ] && [ -x "$CLOUDMUX" ]; } || die "missing release binaries (build without SKIP_BUILD=1)"
MOTO=${MOTO_SERVER_BIN:-}
if [ -z "$MOTO" ]; then
    if [ -x "$ROOT/.venv/bin/moto_server" ]; then MOTO=$ROOT/.venv/bin/moto_server; else MOTO=$(command -v moto_server || true); fi
fi
[[ " $LOCATIONS " != *" moto "* ]] || [ -x "$MOTO" ] || die "moto_server not found (scripts/install-test-deps.sh)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cloudmux-versioning.XXXXXX")
SERVER_PID=""
MOTO_PID=""

# Stops what this script started (the server, and moto's process group,
# which it leads), and nothing else.
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -n "$MOTO_PID" ]; then
        # moto answers SIGTERM by finishing its requests; after holding a
        # few GiB that can take seconds.
        kill -- "-$MOTO_PID" 2>/dev/null || true
        for _ in $(seq 150); do kill -0 "$MOTO_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 -- "-$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        echo "versioning bench: data kept in $WORK" >&2
    else
        find "$WORK" -type f -print0 | xargs -0 -r -P 16 -n 200 rm -f
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$RUNS"
rm -f "$RUNS"/*.json "$RUNS"/*.log

# ---- moto ----
if [[ " $LOCATIONS " == *" moto "* ]]; then
    MOTO_PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    log "moto on 127.0.0.1:$MOTO_PORT"
    # A process group of its own, so that cleanup stops moto with any child.
    setsid "$MOTO" -H 127.0.0.1 -p "$MOTO_PORT" >"$RUNS/moto.log" 2>&1 &
    MOTO_PID=$!
    up=0
    for _ in $(seq 300); do
        if curl -fsS -o /dev/null -X PUT "http://127.0.0.1:$MOTO_PORT/$TARGET" 2>/dev/null; then up=1; break; fi
        kill -0 "$MOTO_PID" 2>/dev/null || break
        sleep 0.2
    done
    [ "$up" = 1 ] || die "moto did not start or refused CreateBucket $TARGET (see $RUNS/moto.log)"
    MOTO_VERSION=$("$ROOT/.venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null || echo "?")
fi

# ---- cloudmux ----
write_cloudmux_config "$WORK" "$ACCESS" "$SECRET" "$REGION"
if [ -n "$MOTO_PID" ]; then
    cat >>"$WORK/cloudmux.toml" <<EOC

[locations.moto]
type = "s3"
endpoint = "http://127.0.0.1:$MOTO_PORT"
region = "us-east-1"
bucket = "$TARGET"
access_key = "testing"
secret_key = "testing"
path_style = true
EOC
fi
cp "$WORK/cloudmux.toml" "$RUNS/cloudmux.toml"
"$CLOUDMUX" serve --config "$WORK/cloudmux.toml" >"$WORK/out" 2>"$RUNS/server.log" &
SERVER_PID=$!
ENDPOINT=$(endpoint_from "$WORK/out" "$SERVER_PID") || die "cloudmux did not start (see $RUNS/server.log)"
log "cloudmux at $ENDPOINT (pid $SERVER_PID)"

COMMON=(--endpoint "$ENDPOINT" --access-key "$ACCESS" --secret-key "$SECRET" --region "$REGION"
    --list-keys "$LIST_KEYS" --pid "$SERVER_PID")

# bench_args LOC SIDE: the arguments of one bucket pair: its location, its
# name, versioning, and how often each list key is written. The plain list
# bucket gets each key once: more writes would only replace the null
# version again (the same keys, the same records in the end), and each
# costs moto several requests.
bench_args() {
    local a=(--location "$1" --bucket "vb-$1-$2" --label "$1/$2")
    if [ "$2" = versioned ]; then
        a+=(--versioning --list-writes "$LIST_WRITES")
    else
        a+=(--list-writes 1)
    fi
    echo "${a[@]}"
}

# ---- setup, untimed ----
for loc in $LOCATIONS; do
    for side in plain versioned; do
        log "$loc/$side: creating and populating (at most $POPULATE_TIMEOUT s for the list bucket)"
        # shellcheck disable=SC2046  # bench_args prints words without spaces
        if ! timeout $((POPULATE_TIMEOUT + 300)) "$BENCH" load "${COMMON[@]}" $(bench_args "$loc" "$side") \
            --workload "$WORKLOADS" --populate-timeout "$POPULATE_TIMEOUT" --setup-only \
            2>&1 | tee "$RUNS/setup-$loc-$side.log" >&2; then
            die "setup of $loc/$side failed (see $RUNS/setup-$loc-$side.log)"
        fi
    done
done
T1=$(date +%s)

# ---- the timed runs, interleaved ----
STATUS=0
for loc in $LOCATIONS; do
    for round in $(seq "$ROUNDS"); do
        order="plain versioned"
        [ $((round % 2)) = 0 ] && order="versioned plain"
        for w in ${WORKLOADS//,/ }; do
            for side in $order; do
                json=$RUNS/$loc-$w-$side-$round.json
                # shellcheck disable=SC2046  # bench_args prints words without spaces
                if ! timeout $((DURATION + 120)) "$BENCH" load "${COMMON[@]}" $(bench_args "$loc" "$side") \
                    --workload "$w" --prepared --concurrency "$CONCURRENCY" --duration "$DURATION" \
                    --json "$json" 2>>"$RUNS/load.log"; then
                    STATUS=1
                fi
                [ -s "$json" ] && tail -n 1 "$RUNS/load.log" | sed "s/^/round $round: /" >&2
            done
        done
    done
done
T2=$(date +%s)

# ---- the table ----
COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates benches/src 2>/dev/null || echo +dirty)"
# json_list "a,b": ["a", "b"]
json_list() {
    local IFS=, items x out=""
    read -ra items <<<"$1"
    for x in "${items[@]}"; do out+="${out:+, }\"$x\""; done
    echo "[$out]"
}
cat >"$RUNS/meta.json" <<EOF
{"commit": "$COMMIT", "date_utc": "$(date -u '+%Y-%m-%d %H:%M')", "cpus": $(nproc),
 "duration_s": $DURATION, "rounds": $ROUNDS, "concurrency": $CONCURRENCY,
 "list_keys": $LIST_KEYS, "list_writes": $LIST_WRITES, "moto": "${MOTO_VERSION:-}",
 "setup_s": $((T1 - T0)), "timed_s": $((T2 - T1)),
 "locations": $(json_list "${LOCATIONS// /,}"), "workloads": $(json_list "$WORKLOADS")}
EOF
"$PYTHON" "$ROOT/benches/versioning/table.py" "$RUNS" "$RUNS/meta.json" "$OUT/versioning.txt" "$OUT/versioning.json"
log "results: $OUT/versioning.txt, $OUT/versioning.json"
exit "$STATUS"
