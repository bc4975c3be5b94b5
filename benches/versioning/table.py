#!/usr/bin/env python3
"""The table of benches/versioning/run.sh, from its runs directory.

    table.py RUNS_DIR META_JSON TXT_OUT JSON_OUT

RUNS_DIR holds one `cloudmux-bench load --json` file per run, named
LOCATION-WORKLOAD-SIDE-ROUND.json (SIDE is plain or versioned); META_JSON
describes the run (locations, workloads, rounds, settings). Prints the table
and writes it to TXT_OUT, and the medians, ratios and every run to JSON_OUT.

Per (location, workload) it reports the median over the rounds of each side
and two ratios versioned/plain: the ratio of the medians, and the median of
the rounds' own ratios (each round runs both sides back to back, so a round's
ratio compares runs that saw the same state of the machine).
"""
import json
import os
import statistics
import sys


def load_side(runs_dir, loc, w, side, rounds, runs):
    out = []
    for r in range(1, rounds + 1):
        path = f"{runs_dir}/{loc}-{w}-{side}-{r}.json"
        if not os.path.exists(path):
            continue
        with open(path) as f:
            d = json.load(f)
        for res in d.get("results", []):
            res = dict(res, location=loc, side=side, round=r)
            runs.append(res)
            out.append(res)
    return out


def ratio(a, b):
    return a / b if b else None


def fmt(x):
    return "n/a" if x is None else f"{x:.2f}x"


def main():
    runs_dir, meta_path, txt, out_json = sys.argv[1:5]
    with open(meta_path) as f:
        meta = json.load(f)
    rounds = meta["rounds"]
    runs, summary, lines = [], [], []
    lines.append(
        f"{'location':8} {'workload':8} {'bucket':9} {'ops/s':>9} {'MiB/s':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'errors':>6}  ops/s per round"
    )
    for loc in meta["locations"]:
        for w in meta["workloads"]:
            row = {"location": loc, "workload": w}
            for side in ("plain", "versioned"):
                rs = load_side(runs_dir, loc, w, side, rounds, runs)
                s = {
                    f: statistics.median(r[f] for r in rs) if rs else 0.0
                    for f in ("ops_per_s", "mib_per_s", "p50_ms", "p99_ms")
                }
                s["errors"] = sum(r["errors"] for r in rs)
                s["rounds"] = {r["round"]: r["ops_per_s"] for r in rs}
                s["first_error"] = next((r["first_error"] for r in rs if r.get("first_error")), None)
                row[side] = s
                per = " ".join(f"{v:.1f}" for _, v in sorted(s["rounds"].items()))
                lines.append(
                    f"{loc:8} {w:8} {side:9} {s['ops_per_s']:9.1f} {s['mib_per_s']:8.1f} "
                    f"{s['p50_ms']:8.2f} {s['p99_ms']:8.2f} {s['errors']:6}  {per}"
                )
                if s["first_error"]:
                    lines.append(f"{'':27} first error: {s['first_error'][:140]}")
            p, v = row["plain"], row["versioned"]
            row["ratio_ops"] = ratio(v["ops_per_s"], p["ops_per_s"])
            row["ratio_p50"] = ratio(v["p50_ms"], p["p50_ms"])
            row["ratio_p99"] = ratio(v["p99_ms"], p["p99_ms"])
            paired = [
                ratio(v["rounds"][r], p["rounds"][r])
                for r in sorted(p["rounds"])
                if r in v["rounds"] and p["rounds"][r]
            ]
            row["round_ratios_ops"] = paired
            row["median_round_ratio_ops"] = statistics.median(paired) if paired else None
            summary.append(row)
    lines.append("")
    lines.append("versioned / plain: ops/s, p50 and p99 as ratios of the medians; then the median")
    lines.append("of the rounds' own ops/s ratios, and each round's (ops/s below 1: versioning costs)")
    lines.append(
        f"{'location':8} {'workload':8} {'ops/s':>7} {'p50':>7} {'p99':>7} {'rounds':>7}  per round"
    )
    for row in summary:
        per = " ".join(fmt(x) for x in row["round_ratios_ops"])
        lines.append(
            f"{row['location']:8} {row['workload']:8} {fmt(row['ratio_ops']):>7} "
            f"{fmt(row['ratio_p50']):>7} {fmt(row['ratio_p99']):>7} "
            f"{fmt(row['median_round_ratio_ops']):>7}  {per}"
        )
    by = {(r["location"], r["workload"]): r for r in summary}
    for loc in meta["locations"]:
        lv, ls = by.get((loc, "listver")), by.get((loc, "list"))
        if lv and ls and ls["plain"]["ops_per_s"]:
            x = lv["versioned"]["ops_per_s"] / ls["plain"]["ops_per_s"]
            lines.append(
                f"{loc:8} versioned listver / plain list: {x:.2f}x (a page of 1,000 versions "
                f"against a ListObjectsV2 page of 1,000 keys)"
            )
            summary.append(
                {"location": loc, "workload": "listver-versioned/list-plain", "ratio_ops": x}
            )
    lines.append("")
    lines.append(
        f"cloudmux {meta['commit']}, {meta['date_utc']} UTC; {meta['concurrency']} requests in flight, "
        f"{meta['duration_s']:g} s per run, {rounds} rounds; {meta['cpus']} CPUs shared by "
        f"cloudmux, moto and the load generator"
    )
    lines.append(
        f"list buckets: {meta['list_keys']} keys, written {meta['list_writes']} times each in the "
        f"versioned one ({meta['list_keys'] * meta['list_writes']} versions), once in the plain one "
        f"({meta['list_keys']} null versions); overwrites: 64 keys per size"
        + (f"; moto {meta['moto']}" if meta.get("moto") else "")
    )
    lines.append(f"setup {meta['setup_s']} s, timed runs {meta['timed_s']} s")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    with open(txt, "w") as f:
        f.write(text)
    with open(out_json, "w") as f:
        json.dump({"meta": meta, "summary": summary, "runs": runs}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
