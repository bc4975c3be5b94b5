#!/usr/bin/env bash
# Run the whole cloudmux test suite: the one command for developers and CI.
#
#   scripts/test.sh
#
# Steps (each one runs even if an earlier one failed, except where it needs
# the server binary):
#   1. scripts/install-test-deps.sh        (fast no-op when all is installed)
#   2. cargo build --bin cloudmux --features failpoints  (debug server
#      binary; the failpoints are inert until a test arms them, and release
#      builds leave them out), and scripts/build-old-release.sh (the last
#      release before versioning, for the store upgrade test)
#   3. Rust tests: cargo nextest run --workspace --all-features (cargo test
#      if nextest is absent); tests/faults.rs runs the whole fault matrix on
#      `fs` and a seeded sample on the clouds
#   4. cargo clippy --workspace --all-targets, with and without
#      --all-features, -D warnings
#   5. cargo fmt --all --check
#   6. Python client tests: pytest tests/py against target/debug/cloudmux
#      (CLOUDMUX_BIN), aws CLI v1 + boto3 over HTTPS
#   7. Benchmark smokes: `cargo run -p cloudmux-bench -- smoke` when the bench
#      crate has that subcommand, and every executable benches/smoke.sh and
#      benches/*/smoke.sh (skipped when there is none)
#   8. The compatibility matrix (docs/s3-compatibility.md):
#      scripts/check-compat-matrix.py requires every test it names to have
#      passed in steps 3 and 6 (nextest's and pytest's JUnit reports); with
#      SKIP_RUST, SKIP_PY or PYTEST_ARGS only that the tests exist
#
# Exits non-zero if anything failed. The last line is
#   summary: N passed, N failed, N skipped
# counting individual Rust and Python tests plus one per other step.
# Logs of every step are kept in target/test-logs/.
#
# Environment:
#   PYTEST_ARGS   extra arguments for pytest (e.g. "-k presign -x")
#   SKIP_RUST=1   skip the Rust tests, clippy and fmt (python work loop)
#   SKIP_PY=1     skip the Python tests
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
# Cargo's target dir (CARGO_TARGET_DIR or .cargo/config may move it).
TARGET=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -nE 's/.*"target_directory":"([^"]+)".*/\1/p' || true)
TARGET=${TARGET:-$ROOT/target}
LOGS="$TARGET/test-logs"
mkdir -p "$LOGS"

PASSED=0
FAILED=0
SKIPPED=0
REPORT=()

note() { printf '\n==> %s\n' "$*"; }

# add_result NAME STATUS PASSED FAILED SKIPPED SECONDS
add_result() {
    PASSED=$((PASSED + $3))
    FAILED=$((FAILED + $4))
    SKIPPED=$((SKIPPED + $5))
    REPORT+=("$(printf '%-14s %-7s %5s passed %4s failed %4s skipped  %5ss' "$1" "$2" "$3" "$4" "$5" "$6")")
}

# run_check NAME LOGFILE CMD...: a step that counts as a single check.
run_check() {
    local name=$1 log=$2 start rc
    shift 2
    note "$name: $*"
    start=$SECONDS
    set +e
    "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -eq 0 ]; then
        add_result "$name" ok 1 0 0 $((SECONDS - start))
    else
        echo "!! $name failed (exit $rc), log: $log"
        add_result "$name" FAILED 0 1 0 $((SECONDS - start))
    fi
    return "$rc"
}

# ---- 1. dependencies ----------------------------------------------------------
# The installer puts the Python tools into ./.venv (unless PYTHON names
# another interpreter), so PYTHON is settled only after it ran.
run_check deps "$LOGS/deps.log" scripts/install-test-deps.sh || true
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHON
# The emulators and clients installed into the project's virtualenv come first.
export PATH="$ROOT/.venv/bin:$PATH"

# ---- 2. build -------------------------------------------------------------------
BUILD_OK=1
run_check build "$LOGS/build.log" cargo build --bin cloudmux --features failpoints || BUILD_OK=0
BIN="$TARGET/debug/cloudmux"
export CLOUDMUX_BIN="$BIN"
# The last release before versioning, for the upgrade test (tests/upgrade.rs),
# built in a target directory of its own.
if [ "${SKIP_RUST:-0}" != 1 ]; then
    if run_check old-release "$LOGS/old-release.log" scripts/build-old-release.sh; then
        CLOUDMUX_OLD_BIN=$(tail -n1 "$LOGS/old-release.log")
        export CLOUDMUX_OLD_BIN
    fi
fi

# ---- 3. Rust tests ----------------------------------------------------------------
if [ "${SKIP_RUST:-0}" = 1 ]; then
    add_result rust-tests skipped 0 0 0 0
else
    note "rust tests"
    start=$SECONDS
    log="$LOGS/rust-tests.log"
    # Only this run's JUnit report (.config/nextest.toml) may reach step 8.
    rm -f "$TARGET/nextest/default/junit.xml"
    set +e
    if cargo nextest --version >/dev/null 2>&1; then
        timeout --kill-after=30 2400 cargo nextest run --workspace --all-features --no-fail-fast \
            --no-tests=warn 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
        # "Summary [ 1.2s] 45 tests run: 43 passed, 2 failed, 1 skipped"
        line=$(grep -E '^ *Summary \[.*tests? run:' "$log" | tail -n1)
        run=$(sed -nE 's/.* ([0-9]+) tests? run:.*/\1/p' <<<"$line")
        ok=$(sed -nE 's/.*tests? run: ([0-9]+) passed.*/\1/p' <<<"$line")
        sk=$(sed -nE 's/.* ([0-9]+) skipped.*/\1/p' <<<"$line")
        if [ -n "$run" ] && [ -n "$ok" ]; then bad=$((run - ok)); else ok=0 bad=0; fi
    else
        timeout --kill-after=30 2400 cargo test --workspace --all-features --no-fail-fast 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
        # "test result: ok. 12 passed; 0 failed; 1 ignored; ..." per test binary
        read -r ok bad sk < <(awk '/^test result: /{
                for (i = 1; i <= NF; i++) {
                    if ($(i+1) ~ /^passed/) p += $i
                    if ($(i+1) ~ /^failed/) f += $i
                    if ($(i+1) ~ /^ignored/) g += $i
                }
            } END { print p+0, f+0, g+0 }' "$log")
        ok=${ok:-0} bad=${bad:-0}
    fi
    set -e
    sk=${sk:-0}
    # A failing run with no failed test counted (build error, timeout) is one failure.
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    status=ok
    [ "$rc" -eq 0 ] || status=FAILED
    add_result rust-tests "$status" "$ok" "$bad" "$sk" $((SECONDS - start))
fi

# ---- 4./5. lints ----------------------------------------------------------------------
if [ "${SKIP_RUST:-0}" = 1 ]; then
    add_result clippy skipped 0 0 0 0
    add_result fmt skipped 0 0 0 0
else
    run_check clippy "$LOGS/clippy.log" cargo clippy --workspace --all-targets --all-features -- -D warnings || true
    run_check clippy-nofeat "$LOGS/clippy-nofeat.log" cargo clippy --workspace --all-targets -- -D warnings || true
    run_check fmt "$LOGS/fmt.log" cargo fmt --all --check || true
fi

# ---- 6. Python client tests ----------------------------------------------------------
if [ "${SKIP_PY:-0}" = 1 ]; then
    add_result python-tests skipped 0 0 0 0
elif [ "$BUILD_OK" != 1 ] || [ ! -x "$BIN" ]; then
    note "python tests: not run, the server binary did not build"
    add_result python-tests FAILED 0 1 0 0
else
    note "python tests (pytest tests/py, CLOUDMUX_BIN=$BIN)"
    start=$SECONDS
    xml="$LOGS/pytest.xml"
    rm -f "$xml"
    set +e
    # shellcheck disable=SC2086  # PYTEST_ARGS is a list of words on purpose
    timeout --kill-after=30 1800 \
        "$PYTHON" -m pytest tests/py -p no:cacheprovider --junitxml="$xml" \
        ${PYTEST_ARGS:-} 2>&1 | tee "$LOGS/pytest.log"
    rc=${PIPESTATUS[0]}
    set -e
    counts=$("$PYTHON" - "$xml" <<'PY' || echo "0 0 0"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = f = s = 0
for su in suites:
    t += int(su.get("tests", 0))
    f += int(su.get("failures", 0)) + int(su.get("errors", 0))
    s += int(su.get("skipped", 0))
print(t - f - s, f, s)
PY
)
    read -r ok bad sk <<<"$counts"
    # Exit 5 = no tests collected: that is a failure of this suite too.
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    status=ok
    [ "$rc" -eq 0 ] || status=FAILED
    add_result python-tests "$status" "$ok" "$bad" "$sk" $((SECONDS - start))
fi

# ---- 7. benchmark smokes ------------------------------------------------------------------
# The load generator's own smoke (`cloudmux-bench smoke`, see benches/README.md)
# when the bench crate defines one, then every executable benches/smoke.sh and
# benches/*/smoke.sh (benches/memory/smoke.sh: 256 MiB through the server
# under the 200 MiB RSS limit).
SMOKES=()
if [ -f benches/Cargo.toml ] && grep -qs '^ *Smoke,' benches/src/main.rs; then
    SMOKES+=("cargo-bench")
fi
for s in benches/smoke.sh benches/*/smoke.sh; do
    if [ -x "$s" ]; then SMOKES+=("$s"); fi
done
if [ "${#SMOKES[@]}" -eq 0 ]; then
    note "bench smoke: none defined, skipped"
    add_result bench-smoke skipped 0 0 1 0
else
    for s in "${SMOKES[@]}"; do
        if [ "$s" = cargo-bench ]; then
            run_check bench-smoke "$LOGS/bench-smoke.log" \
                timeout --kill-after=30 900 cargo run -q -p cloudmux-bench -- smoke || true
        elif [ "$BUILD_OK" != 1 ]; then
            add_result "smoke:$(basename "$(dirname "$s")")" FAILED 0 1 0 0
        else
            name="smoke:$(basename "$(dirname "$s")")"
            run_check "$name" "$LOGS/${name//[:\/]/-}.log" \
                timeout --kill-after=30 900 "$s" || true
        fi
    done
fi

# ---- 8. compatibility matrix ---------------------------------------------------------------
# Last, because it reads the JUnit reports of steps 3 and 6.
MATRIX_ARGS=(--nextest-junit "$TARGET/nextest/default/junit.xml" --pytest-junit "$LOGS/pytest.xml")
if [ "${SKIP_RUST:-0}" = 1 ] || [ "${SKIP_PY:-0}" = 1 ] || [ -n "${PYTEST_ARGS:-}" ]; then
    note "compatibility matrix: partial run, checking only that the named tests exist"
    MATRIX_ARGS+=(--existence-only)
fi
run_check compat-matrix "$LOGS/compat-matrix.log" \
    "$PYTHON" scripts/check-compat-matrix.py "${MATRIX_ARGS[@]}" || true

# ---- summary ------------------------------------------------------------------------------------
printf '\n==> results (logs in %s)\n' "$LOGS"
printf '%s\n' "${REPORT[@]}"
echo "summary: $PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
