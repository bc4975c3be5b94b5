#!/usr/bin/env python3
"""Check docs/s3-compatibility.md against the tests of this CI run.

    scripts/check-compat-matrix.py                   # after scripts/test.sh
    scripts/check-compat-matrix.py --existence-only  # after a partial run

Every `supported` or `partly` row must name at least one test, a `not` row
none. Every named test must exist in the sources (Rust: a `#[test]` or
`#[tokio::test]` function of that crate's test target; Python: a `def` of
that file). Without `--existence-only`, each named test, and the router's
own matrix unit tests (`GATE_TESTS`), must also have run and passed in the
JUnit reports of this run: nextest's (`target/nextest/default/junit.xml`,
configured in `.config/nextest.toml`) and pytest's
(`target/test-logs/pytest.xml`, written by scripts/test.sh). That the router
answers exactly the supported and partly rows is checked by those unit tests
(`cargo nextest run -p cloudmux-s3 matrix_tests`).

Exits 1 with the list of problems, 0 when the matrix holds. Standard
library only.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATUSES = ("supported", "partly", "not")
# The unit tests that compare the router with the matrix: they must pass in
# the same run, or the matrix may list what the router does not answer.
GATE_TESTS = (
    "cloudmux-s3 router::matrix_tests::all_lists_every_variant",
    "cloudmux-s3 router::matrix_tests::the_classifier_returns_only_listed_endpoints",
    "cloudmux-s3 router::matrix_tests::the_matrix_has_one_row_per_operation",
    "cloudmux-s3 router::matrix_tests::the_matrix_lists_exactly_what_the_router_answers",
    "cloudmux-s3 router::matrix_tests::request_lines_classify_as_their_rows_say",
)


@dataclass
class Row:
    """One operation row of the matrix."""

    line: int
    op: str
    status: str
    tests: list[str] = field(default_factory=list)


def parse_matrix(text: str) -> tuple[list[Row], list[str]]:
    """The rows of every table whose first header is `Operation`, and the
    format problems found on the way."""
    rows: list[Row] = []
    problems: list[str] = []
    in_table = False
    for n, line in enumerate(text.splitlines(), 1):
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "Operation":
            in_table = True
            continue
        if not in_table or all(set(c) <= {"-"} for c in cells):
            continue
        if len(cells) != 7:
            problems.append(f"line {n}: {len(cells)} cells, a row has 7")
            continue
        op = cells[0].removesuffix(" (directory buckets)")
        status = cells[2]
        tests = re.findall(r"`([^`]+)`", cells[6])
        rows.append(Row(n, op, status, tests))
        if status not in STATUSES:
            problems.append(f"line {n}: {op}: status {status!r}, not one of {STATUSES}")
        elif status != "not" and not tests:
            problems.append(f"line {n}: {op}: a {status} row names no test")
        elif status == "not" and tests:
            problems.append(f"line {n}: {op}: a not row names tests")
    seen: dict[str, int] = {}
    for r in rows:
        if r.op in seen:
            problems.append(f"line {r.line}: {r.op}: second row (first on line {seen[r.op]})")
        seen.setdefault(r.op, r.line)
    if not rows:
        problems.append("no operation table found")
    return rows, problems


def cargo_targets(root: Path) -> dict[str, Path]:
    """nextest binary ids (`crate` for a lib's unit tests, `crate::name` for
    an integration test) to the files whose functions they run."""
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout
    ids: dict[str, Path] = {}
    for pkg in json.loads(out)["packages"]:
        for t in pkg["targets"]:
            src = Path(t["src_path"])
            if "lib" in t["kind"] or "proc-macro" in t["kind"]:
                ids[pkg["name"]] = src.parent
            elif "test" in t["kind"]:
                ids[f"{pkg['name']}::{t['name']}"] = src
    return ids


def rust_test_exists(name: str, targets: dict[str, Path]) -> str | None:
    """None when the Rust test `BINARY PATH::TEST` exists, else why not."""
    binary, _, path = name.partition(" ")
    if not path:
        return "not `BINARY TEST` (e.g. `cloudmux-e2e::objects put_get_round_trip_and_etag`)"
    where = targets.get(binary)
    if where is None:
        return f"no test binary {binary!r}"
    fn = path.rsplit("::", 1)[-1]
    files = sorted(where.rglob("*.rs")) if where.is_dir() else [where]
    pattern = re.compile(
        r"#\[(?:tokio::)?test[^\]]*\]\s*(?:#\[[^\]]*\]\s*)*(?:async\s+)?fn\s+" + re.escape(fn) + r"\s*\("
    )
    if any(pattern.search(f.read_text(errors="replace")) for f in files):
        return None
    return f"no test function {fn} in {where.relative_to(ROOT) if where.is_relative_to(ROOT) else where}"


def python_test_exists(node: str, root: Path) -> str | None:
    """None when the pytest node id `FILE::[CLASS::]TEST[PARAMS]` exists."""
    parts = node.split("::")
    path = root / parts[0]
    if len(parts) < 2 or not path.is_file():
        return f"no file {parts[0]}"
    src = path.read_text(errors="replace")
    for cls in parts[1:-1]:
        if not re.search(rf"^class\s+{re.escape(cls)}\b", src, re.M):
            return f"no class {cls} in {parts[0]}"
    fn = parts[-1].split("[", 1)[0]
    if not re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(fn)}\s*\(", src, re.M):
        return f"no function {fn} in {parts[0]}"
    return None


def is_python(name: str) -> bool:
    """Whether a test name is a pytest node id."""
    return ".py::" in name


def outcome(case: ET.Element) -> str:
    """`passed`, `failed` or `skipped` for a JUnit testcase."""
    if case.find("failure") is not None or case.find("error") is not None:
        return "failed"
    if case.find("skipped") is not None:
        return "skipped"
    return "passed"


def nextest_results(path: Path) -> dict[str, str]:
    """`BINARY TEST` to its outcome, from nextest's JUnit report."""
    results: dict[str, str] = {}
    for suite in ET.parse(path).getroot().iter("testsuite"):
        for case in suite.iter("testcase"):
            results[f"{suite.get('name')} {case.get('name')}"] = outcome(case)
    return results


def pytest_results(path: Path, rootdir: Path) -> dict[str, str]:
    """pytest node ids (from the repository root) to their outcomes, from
    pytest's JUnit report (`classname` is the dotted path from `rootdir`,
    the directory of the ini file, then any class)."""
    results: dict[str, str] = {}
    rel = rootdir.relative_to(ROOT).as_posix() if rootdir.is_relative_to(ROOT) else ""
    for case in ET.parse(path).getroot().iter("testcase"):
        dotted = case.get("classname", "").split(".")
        for cut in range(len(dotted), 0, -1):
            file = "/".join(dotted[:cut]) + ".py"
            if (rootdir / file).is_file():
                prefix = f"{rel}/{file}" if rel else file
                node = "::".join([prefix, *dotted[cut:], case.get("name", "")])
                results[node] = outcome(case)
                break
    return results


def junit_outcome(name: str, results: dict[str, str]) -> str:
    """`passed` when the test (every parametrization of a Python test named
    without `[...]`) ran and passed in this run, else what happened."""
    if name in results:
        return results[name]
    if is_python(name) and "[" not in name:
        runs = [o for n, o in results.items() if n.startswith(name + "[")]
        if runs:
            bad = [o for o in runs if o != "passed"]
            return bad[0] if bad else "passed"
    return "did not run"


def check(
    matrix: Path,
    root: Path,
    nextest_xml: Path | None,
    pytest_xml: Path | None,
    pytest_root: Path,
    existence_only: bool,
    targets: dict[str, Path] | None = None,
) -> tuple[list[str], dict[str, int]]:
    """The problems of the matrix and the count of rows by status."""
    if not matrix.is_file():
        return [f"no matrix at {matrix}"], {s: 0 for s in STATUSES}
    rows, problems = parse_matrix(matrix.read_text())
    counts = {s: sum(r.status == s for r in rows) for s in STATUSES}
    named = [(r, t) for r in rows for t in r.tests]
    if any(not is_python(t) for _, t in named) and targets is None:
        targets = cargo_targets(root)
    for r, t in named:
        why = python_test_exists(t, root) if is_python(t) else rust_test_exists(t, targets or {})
        if why:
            problems.append(f"line {r.line}: {r.op}: `{t}`: {why}")
    if existence_only:
        return problems, counts
    results: dict[str, str] = {}
    for what, xml, read in (
        ("nextest", nextest_xml, nextest_results),
        ("pytest", pytest_xml, lambda p: pytest_results(p, pytest_root)),
    ):
        if xml is None or not xml.is_file():
            problems.append(f"no {what} JUnit report at {xml}: did this run's {what} step run?")
            continue
        try:
            results.update(read(xml))
        except ET.ParseError as e:
            problems.append(f"{what} JUnit report {xml}: {e}")
    for t in GATE_TESTS:
        got = junit_outcome(t, results)
        if got != "passed":
            problems.append(f"router check `{t}`: {got} in this run")
    for r, t in named:
        got = junit_outcome(t, results)
        if got != "passed":
            problems.append(f"line {r.line}: {r.op}: `{t}`: {got} in this run")
    return problems, counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--matrix", type=Path, default=ROOT / "docs/s3-compatibility.md")
    ap.add_argument("--nextest-junit", type=Path, default=ROOT / "target/nextest/default/junit.xml")
    ap.add_argument("--pytest-junit", type=Path, default=ROOT / "target/test-logs/pytest.xml")
    ap.add_argument("--pytest-rootdir", type=Path, default=ROOT / "tests/py",
                    help="pytest's rootdir (the directory of pytest.ini)")
    ap.add_argument("--existence-only", action="store_true",
                    help="only check that the named tests exist (after a partial run)")
    args = ap.parse_args()
    problems, counts = check(
        args.matrix, ROOT, args.nextest_junit, args.pytest_junit,
        args.pytest_rootdir, args.existence_only,
    )
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    mode = "tests exist" if args.existence_only else "tests exist and passed in this run"
    if problems:
        print(f"compatibility matrix: {len(problems)} problem(s) ({mode}):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(f"compatibility matrix: ok ({summary}; {mode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
