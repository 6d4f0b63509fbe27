"""The class report and the printed summary, on small synthetic gradebooks and results.json files."""

from __future__ import annotations

import base64
import re

import pytest

from hwkit.report.failures import count_failed_checks
from hwkit.grade.batch import _write_feedback, safe_name
from hwkit.grade.runner import CaseResult, RunResult, cases_from_otter
from hwkit.report.class_report import summary_text, write_report

POINTS = {"q1c": 2.0, "q2b": 1.0, "q2c": 1.0, "q2d": 3.0, "q3b": 2.0, "q4b": 1.0, "q5b": 2.0, "q6a": 3.0, "q6b": 3.0}
FULL = {q: f"{p:g}" for q, p in POINTS.items()}


def _row(name: str, status: str = "ok", **scores: str) -> dict[str, str]:
    row = {"submission": name, **FULL, **scores}
    total = sum(float(row[q]) for q in POINTS)
    return {**row, "total": f"{total:g}", "possible": "18", "status": status}


def _case(question: str, name: str, message: str = "", passed: bool = False) -> CaseResult:
    return CaseResult(question, name, 1.0, name.endswith("_public") is False, passed, message)


def _feedback(out, name: str, cases: list[CaseResult]) -> None:
    """The submission's feedback folder, written by the grader's own writer."""
    _write_feedback(out / "feedback" / safe_name(name), name, RunResult("ok", cases=cases), POINTS)


def _class(out) -> list[dict[str, str]]:
    """Four submissions: full marks, two failing q3b's test_q3b_values, and one timed out."""
    rows = [_row("alice.ipynb"), _row("bob.ipynb", q3b="0.5"), _row("carol.ipynb", q3b="0.5", q1c="0"),
            _row("dave.ipynb", "timeout after 5 s", **{q: "0" for q in POINTS})]
    values = _case("q3b", "test_q3b_values", "check the factor 1/2")
    _feedback(out, "alice.ipynb", [_case("q3b", "test_q3b_values", passed=True)])
    _feedback(out, "bob.ipynb", [values])
    _feedback(out, "carol.ipynb", [_case("q1c", "test_q1c_public", "TypeError raised by kl_divergence: bad"),
                                   values, _case("q3b", "test_q3b_gradients", "the gradient is wrong")])
    _feedback(out, "dave.ipynb", [])
    return rows


def test_report_embeds_figures_and_has_the_expected_counts(tmp_path):
    """Is report.html written, with PNG figures embedded, failing-check counts, pass rates and statuses?"""
    path = write_report(_class(tmp_path), tmp_path, POINTS)
    assert path == tmp_path / "report.html"
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', page)
    assert len(images) == 2 and all(base64.b64decode(i).startswith(b"\x89PNG\r\n\x1a\n") for i in images)
    assert "<tr><td>q3b</td><td>test_q3b_values</td><td>2</td><td>50%</td>" in page
    assert "<tr><td>q3b</td><td>test_q3b_gradients</td><td>1</td>" in page
    assert "<tr><td>q1c</td><td>test_q1c_public</td><td>1</td>" in page
    assert "Not graded" not in page  # a question never graded is a status, not a failing check
    assert "<tr><td>ok</td><td>3</td></tr>" in page and "<tr><td>timeout after 5 s</td><td>1</td></tr>" in page
    # q1c: alice and bob have full marks (50%); q3b: only alice (25%); mean q3b = (2 + 0.5 + 0.5 + 0) / 4
    assert "<tr><td>q1c</td><td>2</td><td>1.00</td><td>50%</td><td>50%</td></tr>" in page
    assert "<tr><td>q3b</td><td>2</td><td>0.75</td><td>38%</td><td>25%</td></tr>" in page
    assert '<tr class="problem"><td>dave.ipynb</td>' in page


def test_student_text_is_escaped(tmp_path):
    """Do a malicious file name and a malicious test message appear only as escaped text?"""
    name = "<script>alert(1)</script>.ipynb"
    rows = [_row(name, "kernel died <b>"), _row("x.ipynb")]
    _feedback(tmp_path, name, [_case("q2b", "test_q2b_name", 'NameError raised by q2b: <img src=x onerror="alert(2)">')])
    page = write_report(rows, tmp_path, POINTS).read_text(encoding="utf-8")
    assert "<script>" not in page and "<img src=x" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.ipynb" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page and "kernel died &lt;b&gt;" in page


def test_an_empty_gradebook_still_gives_a_page(tmp_path):
    """Does a gradebook with no rows give a page and a one-line summary instead of an error?"""
    assert "0 submissions" in write_report([], tmp_path, POINTS).read_text(encoding="utf-8")
    assert summary_text([], POINTS) == "No submissions."


def test_otter_run_output_is_understood():
    """Are otter run's failed cases found (and its 'Public Tests' summary not counted twice)?"""
    output = ("q3b results:\n    q3b - 1 result:\n        ✅ Test case passed\n\n    q3b - 2 result:\n"
              "        ❌ Test case failed\n        Error at line 37 in test q3b:\n"
              "                      assert not close(wrong), hint\n"
              "        AssertionError: twice the expected value\n        second line of the message\n\n"
              "    q3b - 3 result:\n        ❌ Test case failed\n        Error at line 55 in test q3b:\n"
              "              assert ok, 'float32'\n        AssertionError: float32 inputs give wrong values")
    results = {"tests": [{"name": "Public Tests", "visibility": "visible", "output": output, "status": "failed"},
                         {"name": "q3b", "score": 0.5, "max_score": 2.0, "output": output},
                         {"name": "q1c", "score": 2.0, "max_score": 2.0, "output": "q1c results: All test cases passed!"}]}
    found = [(c.question, c.name, c.message) for c in cases_from_otter(results)]
    assert found == [("q3b", "q3b - 2", "AssertionError: twice the expected value"),
                     ("q3b", "q3b - 3", "AssertionError: float32 inputs give wrong values")]


def test_a_check_failing_twice_in_one_submission_counts_once(tmp_path):
    """Is a check that fails in a public and a hidden part of one submission counted once, and a folder
    without records (a submission that could not be run) nothing?"""
    _feedback(tmp_path, "a.ipynb", [_case("q1c", "test_a", "x"), _case("q1c", "test_a", "y")])
    counts = count_failed_checks([tmp_path / "feedback" / safe_name("a.ipynb"), tmp_path / "feedback" / "missing"], list(POINTS))
    assert [(c.question, c.check, c.failures) for c in counts] == [("q1c", "test_a", 1)]


@pytest.mark.slow
def test_the_report_counts_what_real_submissions_fail(graded_known_dir, known, points):
    """Graded by make grade's runner, does each known mistake's failing check reach the report's count, with the
    sentence the student reads?"""
    folders = sorted((graded_known_dir / "feedback").iterdir())
    counts = count_failed_checks(folders, list(points))
    assert {c.question for c in counts} == set(points)
    mistakes = [k for k in known if k.name not in ("full-credit", "blank") and not k.name.startswith("correct-")]
    assert sum(c.failures for c in counts) >= len(mistakes)
    assert all(c.message and "raised by" not in c.check for c in counts)


def test_summary_fits_on_one_screen(tmp_path):
    """Does the printed summary give class size, mean and median, each question's mean and rate, and statuses?"""
    text = summary_text(_class(tmp_path), POINTS)
    lines = text.splitlines()
    assert len(lines) <= 24 and max(map(len, lines)) <= 100
    # totals 18, 16.5, 14.5, 0: mean 12.25, median 15.5
    assert lines[0].startswith("4 submissions") and "mean 12.25 / 18" in lines[0] and "median 15.5" in lines[0]
    assert re.search(r"^q3b\s+2\s+0\.75\s+25%$", text, flags=re.M)
    assert re.search(r"^q1c\s+2\s+1\.00\s+50%$", text, flags=re.M)
    assert re.search(r"^\s+3  ok$", text, flags=re.M) and re.search(r"^\s+1  timeout after 5 s$", text, flags=re.M)
