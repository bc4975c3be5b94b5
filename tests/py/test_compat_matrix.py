"""scripts/check-compat-matrix.py: the matrix's format, test existence and
JUnit outcomes, on small matrices and reports written here, and the
published matrix's tests all exist."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check-compat-matrix.py"

spec = importlib.util.spec_from_file_location("check_compat_matrix", SCRIPT)
cm = importlib.util.module_from_spec(spec)
sys.modules["check_compat_matrix"] = cm
spec.loader.exec_module(cm)

HEADER = ("| Operation | Request | Status | Notes | Headers | Errors | Tests |\n"
          "| --- | --- | --- | --- | --- | --- | --- |\n")
RUST_OK = "cloudmux-e2e::objects put_get_round_trip_and_etag"
PY_OK = "tests/py/test_basics.py::test_missing_key_and_bucket"
PY_PARAM = "tests/py/test_checksums.py::test_default_put_object_streams_trailer_checksum"


def row(op: str, status: str, *tests: str) -> str:
    cell = "<br>".join(f"`{t}`" for t in tests)
    return f"| {op} | `GET /` | {status} | n | | | {cell} |\n"


def nextest_xml(tmp: Path, cases: dict[str, str]) -> Path:
    """A nextest JUnit report: `BINARY TEST` to passed/failed/skipped."""
    suites: dict[str, list[str]] = {}
    for name, result in cases.items():
        binary, test = name.split(" ", 1)
        body = {"passed": "", "failed": "<failure message='x'/>", "skipped": "<skipped/>"}[result]
        suites.setdefault(binary, []).append(f"<testcase name='{test}' classname='{binary}'>{body}</testcase>")
    xml = "".join(f"<testsuite name='{b}'>{''.join(c)}</testsuite>" for b, c in suites.items())
    p = tmp / "junit.xml"
    p.write_text(f"<?xml version='1.0'?><testsuites name='nextest-run'>{xml}</testsuites>")
    return p


def pytest_xml(tmp: Path, cases: dict[str, str]) -> Path:
    """A pytest JUnit report with classnames relative to tests/py."""
    out = []
    for node, result in cases.items():
        file, name = node.split("::", 1)
        classname = Path(file).relative_to("tests/py").with_suffix("").as_posix().replace("/", ".")
        body = {"passed": "", "failed": "<failure message='x'/>", "skipped": "<skipped/>"}[result]
        out.append(f"<testcase classname='{classname}' name='{name}'>{body}</testcase>")
    p = tmp / "pytest.xml"
    p.write_text(f"<testsuites><testsuite name='pytest'>{''.join(out)}</testsuite></testsuites>")
    return p


def run(tmp: Path, matrix: str, nextest: dict[str, str] | None, py: dict[str, str] | None,
        existence_only: bool = False) -> list[str]:
    m = tmp / "matrix.md"
    m.write_text("# m\n\n" + HEADER + matrix)
    gates = {g: "passed" for g in cm.GATE_TESTS}
    nx = nextest_xml(tmp, {**gates, **nextest}) if nextest is not None else tmp / "absent.xml"
    px = pytest_xml(tmp, py) if py is not None else tmp / "absent-py.xml"
    problems, _ = cm.check(m, ROOT, nx, px, ROOT / "tests/py", existence_only)
    return problems


def test_a_matrix_whose_tests_passed_holds(tmp_path):
    matrix = row("GetObject", "supported", RUST_OK, PY_OK) + row("PutBucketLogging", "not")
    assert run(tmp_path, matrix, {RUST_OK: "passed"}, {PY_OK: "passed"}) == []


def test_a_named_test_that_does_not_exist_fails(tmp_path):
    matrix = row("GetObject", "supported", "cloudmux-e2e::objects no_such_test",
                 "tests/py/test_basics.py::test_no_such_test", "cloudmux-e2e::no_such_binary t")
    problems = run(tmp_path, matrix, {}, {}, existence_only=True)
    assert len(problems) == 3, problems
    assert "no test function no_such_test" in problems[0]
    assert "no function test_no_such_test" in problems[1]
    assert "no test binary" in problems[2]


@pytest.mark.parametrize("result", ["failed", "skipped", None])
def test_a_named_test_that_did_not_pass_in_this_run_fails(tmp_path, result):
    matrix = row("GetObject", "partly", RUST_OK, PY_OK)
    nextest = {RUST_OK: result} if result else {}
    problems = run(tmp_path, matrix, nextest, {PY_OK: "passed"})
    assert problems == [f"line 5: GetObject: `{RUST_OK}`: {result or 'did not run'} in this run"]
    py = {PY_OK: result} if result else {}
    problems = run(tmp_path, matrix, {RUST_OK: "passed"}, py)
    assert problems == [f"line 5: GetObject: `{PY_OK}`: {result or 'did not run'} in this run"]


def test_existence_only_ignores_the_reports(tmp_path):
    matrix = row("GetObject", "supported", RUST_OK, PY_OK)
    assert run(tmp_path, matrix, None, None, existence_only=True) == []
    problems = run(tmp_path, matrix, None, None)
    assert any("no nextest JUnit report" in p for p in problems), problems
    assert any("no pytest JUnit report" in p for p in problems), problems


def test_a_failed_router_check_fails(tmp_path):
    matrix = row("GetObject", "supported", RUST_OK)
    gate = cm.GATE_TESTS[0]
    problems = run(tmp_path, matrix, {RUST_OK: "passed", gate: "failed"}, {})
    assert problems == [f"router check `{gate}`: failed in this run"]


def test_parametrized_python_tests(tmp_path):
    matrix = row("PutObject", "supported", PY_PARAM)
    ok = {f"{PY_PARAM}[0]": "passed", f"{PY_PARAM}[1]": "passed"}
    assert run(tmp_path, matrix, {}, ok) == []
    bad = {**ok, f"{PY_PARAM}[1]": "failed"}
    assert run(tmp_path, matrix, {}, bad) == [f"line 5: PutObject: `{PY_PARAM}`: failed in this run"]
    one = row("PutObject", "supported", f"{PY_PARAM}[0]")
    assert run(tmp_path, one, {}, bad) == []


def test_format_problems(tmp_path):
    matrix = (row("GetObject", "supported")
              + row("HeadObject", "yes", RUST_OK)
              + row("PutBucketLogging", "not", RUST_OK)
              + row("GetObject", "not")
              + "| ListBuckets | `GET /` | supported |\n")
    problems = run(tmp_path, matrix, {RUST_OK: "passed"}, {}, existence_only=True)
    assert problems == [
        "line 5: GetObject: a supported row names no test",
        "line 6: HeadObject: status 'yes', not one of ('supported', 'partly', 'not')",
        "line 7: PutBucketLogging: a not row names tests",
        "line 9: 3 cells, a row has 7",
        "line 8: GetObject: second row (first on line 5)",
    ]


def test_the_published_matrix_names_only_existing_tests():
    out = subprocess.run([sys.executable, str(SCRIPT), "--existence-only"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "compatibility matrix: ok" in out.stdout
