#!/usr/bin/env bash
# Run every fuzz target, one after another: the one command for fuzzing.
#
#   scripts/fuzz.sh                          # every target, 300 s each
#   FUZZ_SECONDS=60 scripts/fuzz.sh auth     # chosen targets, 60 s each
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz
# --locked`). The targets are in fuzz/fuzz_targets/ and call the entry points
# of crates/cloudmux-s3/src/fuzzing.rs. Each target runs under `nice -n 19`
# for FUZZ_SECONDS, starting from its seeds (fuzz/corpus/<target>/, committed,
# only read) and earlier crash inputs (fuzz/regressions/<target>/), and keeps
# what it grows in fuzz/corpus-local/<target>/ (ignored by git) for the next
# run. A crashing input is saved under fuzz/artifacts/<target>/: fix the
# parser, then copy the input to fuzz/regressions/<target>/, where the replay
# test (crates/cloudmux-s3/tests/fuzz_corpus.rs) keeps checking it.
#
# Prints one line per target (executions, crashes, artifact) and exits 1 if
# any target crashed. Full logs: fuzz/target/fuzz-logs/<target>.log.
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 300)
#   FUZZ_TOOLCHAIN  the toolchain cargo-fuzz builds with (default nightly)
#   FUZZ_ARGS       extra libFuzzer arguments, e.g. "-max_len=8192"
set -euo pipefail

cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-300}
TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}
LOGS=fuzz/target/fuzz-logs

if [ $# -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo +"$TOOLCHAIN" fuzz list)
fi
mkdir -p "$LOGS"

echo "==> building ${#TARGETS[@]} fuzz targets"
nice -n 19 cargo +"$TOOLCHAIN" fuzz build

RESULTS=()
CRASHED=0
for t in "${TARGETS[@]}"; do
    log="$LOGS/$t.log"
    corpora=("fuzz/corpus-local/$t" "fuzz/corpus/$t")
    [ -d "fuzz/regressions/$t" ] && corpora+=("fuzz/regressions/$t")
    mkdir -p "fuzz/corpus-local/$t"
    echo "==> $t: ${SECS}s (log: $log)"
    set +e
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of arguments.
    nice -n 19 cargo +"$TOOLCHAIN" fuzz run "$t" "${corpora[@]}" -- \
        -max_total_time="$SECS" -timeout=10 -print_final_stats=1 ${FUZZ_ARGS:-} \
        >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    if [ -z "$execs" ]; then
        execs=$(sed -nE 's/^Done ([0-9]+) runs.*/\1/p' "$log" | tail -n 1)
    fi
    if [ "$rc" -eq 0 ]; then
        line=$(printf '%-14s %12s execs  0 crashes' "$t" "${execs:-?}")
    else
        CRASHED=1
        artifact=$(sed -nE 's/.*Test unit written to ([^ ]+).*/\1/p' "$log" | tail -n 1)
        line=$(printf '%-14s %12s execs  CRASHED (exit %s) %s' "$t" "${execs:-?}" "$rc" "${artifact:-see $log}")
    fi
    echo "$line"
    RESULTS+=("$line")
done

echo
echo "==> fuzzing summary (${SECS}s per target)"
printf '%s\n' "${RESULTS[@]}"
exit "$CRASHED"
