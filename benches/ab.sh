#!/usr/bin/env bash
# A/B speed comparison of two cloudmux binaries with benches/run.sh, runs
# interleaved (A, B, A, B, ...) so that drift of the machine hits both alike.
#
#   benches/ab.sh A_BINARY B_BINARY
#
# Each run is `SERVERS=cloudmux SKIP_BUILD=1 CLOUDMUX=<binary> benches/run.sh`
# (build the B binary with `cargo build --release -p cloudmux -p
# cloudmux-bench` first; the load generator is target/release/cloudmux-bench).
# Prints, per workload, the median ops/s of A and of B over the runs and
# their ratio B/A, and writes them to benches/results/ab.txt.
#
# Environment: ROUNDS (5 runs of each), WORKLOADS (put4k,get4k,put1m,get1m,
# head,list), DURATION (4 s), LIST_KEYS (10000), CONCURRENCY (32).
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:?usage: benches/ab.sh A_BINARY B_BINARY}
B=${2:?usage: benches/ab.sh A_BINARY B_BINARY}
ROUNDS=${ROUNDS:-5}
export SERVERS=cloudmux SKIP_BUILD=1
export WORKLOADS=${WORKLOADS:-put4k,get4k,put1m,get1m,head,list}
export DURATION=${DURATION:-4} LIST_KEYS=${LIST_KEYS:-10000}
OUT=$(mktemp -d)
for round in $(seq "$ROUNDS"); do
    for side in A B; do
        bin=$A
        [ "$side" = B ] && bin=$B
        echo "==> round $round, $side: $bin" >&2
        CLOUDMUX=$bin benches/run.sh >"$OUT/$side-$round.log" 2>&1 || true
        cp benches/results/runs/cloudmux.json "$OUT/$side-$round.json"
    done
done
python3 - "$OUT" "$ROUNDS" <<'PY' | tee benches/results/ab.txt
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(side):
    per = {}
    for r in range(1, rounds + 1):
        d = json.load(open(f"{out}/{side}-{r}.json"))
        rows = d["results"] if isinstance(d, dict) and "results" in d else d
        for w in rows:
            per.setdefault(w["workload"], []).append(w["ops_per_s"])
    return per
a, b = load("A"), load("B")
print(f"{'workload':10} {'A median':>12} {'B median':>12} {'B/A':>6}   (ops/s, {rounds} runs each, interleaved)")
for w in a:
    ma, mb = statistics.median(a[w]), statistics.median(b.get(w, [0]))
    print(f"{w:10} {ma:12.1f} {mb:12.1f} {mb / ma if ma else 0:6.2f}")
PY
