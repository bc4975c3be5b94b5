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
"$PYTHON" - "$RUNS" "$OUT/versioning.txt" "$OUT/versioning.json" <<PY
import glob, json, os, statistics, sys, time
runs_dir, txt, out_json = sys.argv[1:4]
locations = "$LOCATIONS".split()
workloads = "$WORKLOADS".split(",")
rounds = int("$ROUNDS")
meta = {
    "commit": "$COMMIT",
    "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    "cpus": os.cpu_count(),
    "duration_s": float("$DURATION"),
    "rounds": rounds,
    "concurrency": int("$CONCURRENCY"),
    "list_keys": int("$LIST_KEYS"),
    "list_writes": int("$LIST_WRITES"),
    "moto": "${MOTO_VERSION:-}",
    "setup_s": $T1 - $T0,
    "timed_s": $T2 - $T1,
}
runs, summary = [], []
def results(loc, w, side):
    out = []
    for r in range(1, rounds + 1):
        p = f"{runs_dir}/{loc}-{w}-{side}-{r}.json"
        if not os.path.exists(p):
            continue
        d = json.load(open(p))
        for res in d.get("results", []):
            res = dict(res, location=loc, side=side, round=r)
            runs.append(res)
            out.append(res)
    return out
med = lambda rs, f: statistics.median(r[f] for r in rs) if rs else 0.0
lines = []
head = f"{'location':8} {'workload':8} {'bucket':9} {'ops/s':>9} {'MiB/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}  ops/s per round"
lines.append(head)
for loc in locations:
    for w in workloads:
        row = {"location": loc, "workload": w}
        for side in ("plain", "versioned"):
            rs = results(loc, w, side)
            s = {f: med(rs, f) for f in ("ops_per_s", "mib_per_s", "p50_ms", "p99_ms")}
            s["errors"] = sum(r["errors"] for r in rs)
            s["rounds"] = [round(r["ops_per_s"], 1) for r in sorted(rs, key=lambda r: r["round"])]
            s["first_error"] = next((r["first_error"] for r in rs if r.get("first_error")), None)
            row[side] = s
            per = " ".join(f"{v:.1f}" for v in s["rounds"])
            lines.append(f"{loc:8} {w:8} {side:9} {s['ops_per_s']:9.1f} {s['mib_per_s']:8.1f} "
                         f"{s['p50_ms']:8.2f} {s['p99_ms']:8.2f} {s['errors']:6}  {per}")
            if s["first_error"]:
                lines.append(f"{'':27} first error: {s['first_error'][:140]}")
        p, v = row["plain"], row["versioned"]
        div = lambda a, b: a / b if b else None
        row["ratio_ops"] = div(v["ops_per_s"], p["ops_per_s"])
        row["ratio_p50"] = div(v["p50_ms"], p["p50_ms"])
        row["ratio_p99"] = div(v["p99_ms"], p["p99_ms"])
        summary.append(row)
lines.append("")
lines.append("versioned / plain (medians; ops/s below 1 and latency above 1: versioning costs)")
lines.append(f"{'location':8} {'workload':8} {'ops/s':>7} {'p50':>7} {'p99':>7}  ops/s cost")
fmt = lambda x: "n/a" if x is None else f"{x:.2f}x"
for row in summary:
    cost = "n/a" if row["ratio_ops"] is None else f"{(1 - row['ratio_ops']) * 100:+.1f} %"
    lines.append(f"{row['location']:8} {row['workload']:8} {fmt(row['ratio_ops']):>7} "
                 f"{fmt(row['ratio_p50']):>7} {fmt(row['ratio_p99']):>7}  {cost}")
by = {(r["location"], r["workload"]): r for r in summary}
for loc in locations:
    lv, ls = by.get((loc, "listver")), by.get((loc, "list"))
    if lv and ls and ls["plain"]["ops_per_s"]:
        x = lv["versioned"]["ops_per_s"] / ls["plain"]["ops_per_s"]
        lines.append(f"{loc:8} {'listver versioned / list plain':30} {x:.2f}x  "
                     f"(a page of versions against a ListObjectsV2 page of the plain bucket)")
        summary.append({"location": loc, "workload": "listver-versioned/list-plain", "ratio_ops": x})
lines.append("")
lines.append(f"cloudmux {meta['commit']}, {meta['date_utc']} UTC; {meta['concurrency']} requests in flight, "
             f"{meta['duration_s']:g} s per run, {rounds} rounds (medians); {meta['cpus']} CPUs shared by "
             f"cloudmux, moto and the load generator")
lines.append(f"list buckets: {meta['list_keys']} keys, written {meta['list_writes']} times each in the versioned one "
             f"({meta['list_keys'] * meta['list_writes']} versions), once in the plain one ({meta['list_keys']} null versions); "
             f"overwrites: 64 keys per size" + (f"; moto {meta['moto']}" if meta["moto"] else ""))
lines.append(f"setup {meta['setup_s']} s, timed runs {meta['timed_s']} s")
text = "\n".join(lines) + "\n"
print(text, end="")
open(txt, "w").write(text)
json.dump({"meta": meta, "summary": summary, "runs": runs}, open(out_json, "w"), indent=2)
PY
log "results: $OUT/versioning.txt, $OUT/versioning.json"
exit "$STATUS"
