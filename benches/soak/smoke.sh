#!/usr/bin/env bash
# Quick soak for scripts/test.sh: benches/soak/run.sh for 50 s with a fixed
# seed, 8 clients, 2 SIGKILLs of the server (at 18-22 s and 36-44 s) and one
# 5 s emulator pause, on the debug binaries (about 70 s with startup and the
# check). Prints the same summary line and fails the same way.
#   benches/soak/smoke.sh   (CLOUDMUX_BIN defaults to target/debug/cloudmux)
set -euo pipefail
cd "$(dirname "$0")/../.."
# Cargo's target dir (CARGO_TARGET_DIR or .cargo/config may move it).
TARGET=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -nE 's/.*"target_directory":"([^"]+)".*/\1/p' || true)
TARGET=${TARGET:-$(pwd)/target}
# The debug soak binary; CI has built the server already, so this is quick.
cargo build -q -p cloudmux-bench --bin cloudmux-bench
if [ -z "${CLOUDMUX_BIN:-}" ] && [ ! -x "$TARGET/debug/cloudmux" ]; then
    cargo build -q --bin cloudmux
fi
export CLOUDMUX_BIN="${CLOUDMUX_BIN:-$TARGET/debug/cloudmux}"
export BENCH_BIN="${BENCH_BIN:-$TARGET/debug/cloudmux-bench}"
export DURATION="${SMOKE_DURATION:-50}"
export CLIENTS="${SMOKE_CLIENTS:-8}"
export SEED="${SMOKE_SEED:-20261203}"
export KILL_MIN=18 KILL_MAX=22
export PAUSE_GAP_MIN=25 PAUSE_GAP_MAX=30 PAUSE_MIN=5 PAUSE_MAX=5
export OUT="${OUT:-$TARGET/soak/smoke}"
rm -rf "$OUT"
start=$SECONDS
set +e
benches/soak/run.sh
rc=$?
set -e
echo "soak smoke: $((SECONDS - start)) s"
exit "$rc"
