#!/usr/bin/env bash
# Slow bodies: 500 uploads that each send a byte now and then must not slow
# down everyone else.
#
# Usage:
#   benches/limits/run.sh                       # release build, 500 slow PUTs, 15 s phases
#   SLOW=1000 DURATION=20 benches/limits/run.sh
#   CLOUDMUX_BIN=target/debug/cloudmux BENCH_BIN=target/debug/cloudmux-bench benches/limits/run.sh
#
# What it does:
#   1. cargo build --release -p cloudmux -p cloudmux-bench (skipped for
#      each binary given as CLOUDMUX_BIN / BENCH_BIN)
#   2. starts `cloudmux serve` (plain HTTP, 127.0.0.1:0, default [limits]:
#      body_timeout_secs = 30) on a temp data dir
#   3. runs `cloudmux-bench slow-bodies`: a normal client (CONCURRENCY
#      requests in flight, PUT then GET of 4 KiB objects) for DURATION s on
#      the idle server; then SLOW connections each start a PutObject of
#      1 MiB and send one byte every INTERVAL s; then the normal client again
#      for DURATION s with them open
#   4. prints both PUT and GET p99s, their ratios, how many slow uploads the
#      server cut (must be 0: they progress within the body timeout), and
#      PASS when both ratios are at most 2, else FAIL; removes its data.
#
# Environment: SLOW (500), INTERVAL (10), CONCURRENCY (4), DURATION (15),
# CLOUDMUX_BIN, BENCH_BIN, KEEP=1 keeps the temp dir, TMPDIR.
# Exit status: 0 on PASS, 1 on FAIL, 2 on setup errors.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
# shellcheck source=../lib.sh
. "$ROOT/benches/lib.sh"
SLOW=${SLOW:-500}
INTERVAL=${INTERVAL:-10}
CONCURRENCY=${CONCURRENCY:-4}
DURATION=${DURATION:-15}

die() { echo "slow-bodies bench: $*" >&2; exit 2; }

if [ -z "${CLOUDMUX_BIN:-}" ] || [ -z "${BENCH_BIN:-}" ]; then
    echo "==> cargo build --release -p cloudmux -p cloudmux-bench"
    cargo build --release -p cloudmux -p cloudmux-bench
fi
BIN=${CLOUDMUX_BIN:-$ROOT/target/release/cloudmux}
BENCH=${BENCH_BIN:-$ROOT/target/release/cloudmux-bench}
[ -x "$BIN" ] || die "server binary $BIN not found"
[ -x "$BENCH" ] || die "load generator $BENCH not found"

# Each slow upload is one socket in the generator and one in the server.
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((SLOW + 200)) ]; then
    ulimit -n $((SLOW + 200)) 2>/dev/null || die "ulimit -n is $NOFILE, below SLOW + 200"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cloudmux-slow.XXXXXX")
PID=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$PID" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

ACCESS=AKIASLOWBENCH0000001
SECRET=slowbench-secret-000000000000000000001
write_cloudmux_config "$WORK" "$ACCESS" "$SECRET" us-east-1

"$BIN" serve --config "$WORK/cloudmux.toml" >"$WORK/server.out" 2>"$WORK/server.err" &
PID=$!
ENDPOINT=$(endpoint_from "$WORK/server.out" "$PID" 60) || {
    cat "$WORK/server.err" >&2
    die "no endpoint line from the server (it exited, or 60 s passed)"
}
echo "server pid $PID at $ENDPOINT ($BIN)"

STATUS=0
"$BENCH" slow-bodies --endpoint "$ENDPOINT" --access-key "$ACCESS" --secret-key "$SECRET" \
    --slow "$SLOW" --interval "$INTERVAL" --concurrency "$CONCURRENCY" --duration "$DURATION" ||
    STATUS=1
exit "$STATUS"
