#!/usr/bin/env bash
# The full fault matrix of the write path, outside CI (CI runs a seeded
# sample: one power-loss round, each race 50 times, each cancellation point).
#
#   scripts/fault-matrix.sh
#
# Runs, on this machine (root is needed for the loop-mounted ext4 image):
#   - the whole failpoint matrix (tests/faults.rs, CLOUDMUX_FAULTS=full): every
#     registered point of every operation, with an error, a panic and a
#     process exit, on every location type;
#   - the forced interleavings (crates/cloudmux-core/tests/interleavings.rs);
#   - the in-process races and cancellation points (crates/cloudmux-core/tests/
#     write_safety.rs), 5 times over;
#   - the SIGKILL crash tests (tests/crash.rs) 5 times over;
#   - the power-loss test 20 rounds (CLOUDMUX_POWER_LOSS_ROUNDS=20);
#   - the graceful-shutdown test (tests/shutdown.rs) 3 times.
# Prints one line per step and exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
cargo build --bin cloudmux --features failpoints || exit 1
failed=0
step() {
    local name=$1
    shift
    local start=$SECONDS
    if "$@" >"target/fault-matrix-${name}.log" 2>&1; then
        echo "ok     $name ($((SECONDS - start)) s)"
    else
        echo "FAILED $name ($((SECONDS - start)) s), log: target/fault-matrix-${name}.log"
        failed=1
    fi
}
step faults-full env CLOUDMUX_FAULTS=full \
    cargo nextest run -p cloudmux-e2e --test faults --no-capture
step interleavings cargo nextest run -p cloudmux-core --features failpoints --test interleavings
for i in 1 2 3 4 5; do
    step "races-$i" cargo nextest run -p cloudmux-core --test write_safety
    step "crash-$i" cargo nextest run -p cloudmux-e2e --test crash -E 'not test(power_loss)'
done
step power-loss env CLOUDMUX_POWER_LOSS_ROUNDS=20 \
    cargo nextest run -p cloudmux-e2e --test crash -E 'test(power_loss)' --no-capture
for i in 1 2 3; do
    step "shutdown-$i" cargo nextest run -p cloudmux-e2e --test shutdown
done
exit $failed
