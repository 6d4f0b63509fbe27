"""A question added to the master notebook, and nowhere else, is built, graded, reported and listed.

A copy of the master notebook gets two questions after q1c: q1d, auto-graded (a tiny function with one public
and one hidden test), and q1e, written. The copy is built with ``build_assignment`` into a temporary dist and
two submissions (the reference, and the reference with a wrong q1d) are graded with ``hwkit grade``, then
again with the TA's points for q1e. Nothing in src/, solutions/ or the READMEs is edited for it.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import shutil
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from pypdf import PdfReader

from hwkit.author.build import build_assignment, zip_name
from hwkit.cli import main as hwkit
from hwkit.grade.batch import safe_name
from hwkit.report.gradebook import Gradebook
from hwkit.author.known import replace_definition
from hwkit.author.lists import update
from hwkit.author.questions import load_questions, read_master
from hwkit.written.student import written_pdf

pytestmark = pytest.mark.slow  # one build and two gradings of whole notebooks (about a minute on 2 cores)

ROOT = Path(__file__).resolve().parents[1]
ZIP_NAME = zip_name("vae_hw")
PUBLIC = '''""" # BEGIN TEST CONFIG
points: 0
hidden: false
""" # END TEST CONFIG
def test_q1d_public(double):
    """Is double(x) a tensor shaped like x, equal to 2 x, for x of ones?"""
    def probe_q1d_public(double, x):
        """Runs where the student's code runs: calls double and returns what it gives."""
        return double(x)
    import torch
    x = torch.ones(3, dtype=torch.float64)
    got = probe_q1d_public(double, x)
    assert torch.is_tensor(got) and got.shape == x.shape, "double must return a tensor shaped like x"
    assert torch.allclose(got, 2 * x), "double(x) must be 2 x"'''
HIDDEN = '''""" # BEGIN TEST CONFIG
points: 1
hidden: true
""" # END TEST CONFIG
def test_q1d_values(double):
    """Is double(x) twice x on inputs drawn for each submission?"""
    def probe_q1d_values(double, x):
        """Runs where the student's code runs: calls double and returns what it gives."""
        return double(x)
    import torch
    torch.manual_seed(1400)
    x = torch.randn(97, 5, dtype=torch.float64)
    got = probe_q1d_values(double, x)
    assert torch.is_tensor(got) and got.shape == x.shape, "double must return a tensor shaped like x"
    assert not torch.allclose(got, x), "the result equals x: multiply it by 2"
    assert torch.allclose(got, 2 * x), "double(x) is not 2 x"'''
NEW_CELLS = [
    ("raw", "# BEGIN QUESTION\nname: q1d\npoints: 1"),
    ("markdown", "**q1d (code, 1 point).** Write `double(x)`, which returns twice the tensor `x`."),
    ("raw", "# BEGIN SOLUTION"),
    ("code", 'def double(x):\n    """Twice x: (...) -> (...)."""\n    return 2 * x  # SOLUTION'),
    ("raw", "# END SOLUTION"),
    ("raw", "# BEGIN TESTS"), ("code", PUBLIC), ("code", HIDDEN), ("raw", "# END TESTS"),
    ("raw", "# END QUESTION"),
    ("raw", "# BEGIN QUESTION\nname: q1e\nmanual: true\npoints: 1"),
    ("markdown", "**q1e (written, 1 point).** Is the KL divergence a distance? Name one property it lacks."),
    ("raw", "# BEGIN SOLUTION"),
    ("markdown", "No: it is not symmetric, since $D(q \\| p) \\ne D(p \\| q)$ in general."),
    ("raw", "# END SOLUTION"),
    ("raw", "# END QUESTION"),
]
AUTO = ["q1c", "q1d", "q2b", "q2c", "q2d", "q3b", "q4b", "q5b", "q6a", "q6b"]
WRITTEN = ["q1a", "q1b", "q1e", "q2a", "q3a", "q4a", "q5a"]


def _cell(kind: str, source: str):
    make = {"raw": nbformat.v4.new_raw_cell, "markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    return make[kind](source)


def _pages(pdf: Path) -> list[str]:
    return [re.sub(r"\s+", " ", p.extract_text() or "") for p in PdfReader(pdf).pages]


def _page_ids(pdf: Path) -> list[str | None]:
    return [m.group(1) if (m := re.search(r"VAE homework: written answers (q\d[a-z])", t)) else None for t in _pages(pdf)]


def _gradebook(out: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), {r["submission"]: r for r in reader}


@pytest.fixture(scope="module")
def added(tmp_path_factory):
    """A copy of the repository's sources with q1d and q1e in its master notebook, built into ``dist``."""
    repo = tmp_path_factory.mktemp("added-question")
    for folder in ("assignment/data", "assignment/student", "autograder"):  # otter assign wants real files
        shutil.copytree(ROOT / folder, repo / folder)
    shutil.copytree(ROOT / "solutions", repo / "solutions")
    shutil.copy2(ROOT / "README.md", repo / "README.md")
    nb = nbformat.read(ROOT / "assignment" / "vae_hw.ipynb", as_version=4)
    section_2 = next(i for i, c in enumerate(nb.cells) if c.source.startswith("# BEGIN QUESTION\nname: q2a")) - 1
    nb.cells[section_2:section_2] = [_cell(kind, source) for kind, source in NEW_CELLS]  # after q1c's END QUESTION
    master = repo / "assignment" / "vae_hw.ipynb"
    nbformat.write(nb, master)
    dist = repo / "dist"
    # As `make assign`: first the lists of the tracked files, then the build.
    changed = update(repo, read_master(master))
    build_assignment(master=master, dist=dist, solutions=repo / "solutions")
    return repo, dist, changed


@pytest.fixture(scope="module")
def graded(added, tmp_path_factory):
    """The reference and a wrong q1d graded with `hwkit grade` into a folder an earlier grading (before q1d and q1e)
    left a row and a PDF in; then graded again with the TA's points for q1e."""
    repo, dist, _ = added
    subs = tmp_path_factory.mktemp("added-subs")
    reference = nbformat.read(dist / "autograder" / "vae_hw.ipynb", as_version=4)
    nbformat.write(reference, subs / "full.ipynb")
    wrong = nbformat.read(dist / "autograder" / "vae_hw.ipynb", as_version=4)
    replace_definition(wrong, "double", "def double(x):\n    return x\n")
    nbformat.write(wrong, subs / "wrong-q1d.ipynb")
    out = tmp_path_factory.mktemp("added-out")
    # What a grading with the questions before q1d and q1e left there: a gradebook row and a PDF of the reference.
    old = [q for q in AUTO if q != "q1d"]
    Gradebook(out / "gradebook.csv", old).add("full.ipynb", {q: 1.0 for q in old}, 18.0, "ok")
    written_pdf(json.loads(nbformat.writes(reference)), out / "written" / "pdf" / "full.ipynb.pdf",
                written=[q for q in WRITTEN if q != "q1e"])
    (out / "written" / "pdf" / ".questions").write_text(" ".join(q for q in WRITTEN if q != "q1e"), encoding="utf-8")
    args = ["grade", str(subs), "-o", str(out), "--autograder", str(dist / ZIP_NAME), "--jobs", "2"]
    assert hwkit(args) == 0
    first = _gradebook(out), (out / "written_scores.csv").read_text(encoding="utf-8")
    with open(out / "written_scores.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["submission", *WRITTEN], ["full.ipynb", "1", "1", "1", "1", "2", "1", "1"],
                                 ["wrong-q1d.ipynb", "", "", "0.5", "", "", "", ""]])
    assert hwkit(args) == 0
    return out, first


def test_the_new_questions_are_built(added):
    """(1) Are q1d and q1e in questions.json (dist and zip) in notebook order, q1d's tests in the zip, and q1d's
    check and q1e's answer cell in the student notebook?"""
    _, dist, _ = added
    for source in (dist, dist / ZIP_NAME):
        questions = load_questions(source)
        assert [q.qid for q in questions if q.kind == "auto"] == AUTO
        assert [q.qid for q in questions if q.kind == "written"] == WRITTEN
    q1d = next(q for q in load_questions(dist / ZIP_NAME) if q.qid == "q1d")
    assert q1d.points == 1.0 and [(t.name, t.hidden) for t in q1d.tests] == [("test_q1d_public", False),
                                                                             ("test_q1d_values", True)]
    with zipfile.ZipFile(dist / ZIP_NAME) as zf:
        assert "def test_q1d_values(double)" in zf.read("tests/q1d.py").decode("utf-8")
    student = (dist / "student" / "vae_hw.ipynb").read_text(encoding="utf-8")
    assert 'grader.check(\\"q1d\\")' in student and "**q1e (written, 1 point).**" in student
    assert "test_q1d_values" not in student and "not symmetric" not in student


def test_the_new_question_is_graded(graded):
    """(2) Is q1d scored in the gradebook and in results.json: 1 for the reference, 0 for the wrong answer?"""
    out, ((_, rows), _) = graded
    assert (rows["full.ipynb"]["q1d"], rows["wrong-q1d.ipynb"]["q1d"]) == ("1", "0")
    assert rows["full.ipynb"]["status"] == "ok" and rows["wrong-q1d.ipynb"]["q1c"] == "2"
    results = json.loads((out / "feedback" / safe_name("full.ipynb") / "results.json").read_text(encoding="utf-8"))
    hidden = next(t for t in results["tests"] if t["name"] == "q1d hidden tests")
    assert (hidden["score"], hidden["max_score"]) == (1.0, 1.0)


def test_the_new_questions_are_reported(graded):
    """(3) Are q1d in feedback.txt (with the wrong answer's message) and the report, and q1e on the TA pages, in
    results.json's written answers and, once the TA's points are in, in the report?"""
    out, _ = graded
    full = (out / "feedback" / safe_name("full.ipynb") / "feedback.txt").read_text(encoding="utf-8")
    wrong = (out / "feedback" / safe_name("wrong-q1d.ipynb") / "feedback.txt").read_text(encoding="utf-8")
    assert "q1d: 1 / 1" in full and "Total: 19 / 19" in full
    assert "q1d: 0 / 1" in wrong and "the result equals x: multiply it by 2" in wrong
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "<tr><td>q1d</td><td>1</td><td>0.50</td>" in report and "<th>q1d</th>" in report  # per question, gradebook
    assert "<tr><td>q1e</td><td>1</td><td>0.75</td>" in report and "<th>q1e</th>" in report  # with the TA's points
    page = re.sub(r"\s+", " ", (out / "written" / "q1e.html").read_text(encoding="utf-8"))
    assert "not symmetric" in page and "Is the KL divergence a distance?" in page and "No section" in page
    assert 'href="q1e.html"' in (out / "written" / "index.html").read_text(encoding="utf-8")
    results = json.loads((out / "feedback" / safe_name("full.ipynb") / "results.json").read_text(encoding="utf-8"))
    entry = next(t for t in results["tests"] if t["name"].startswith("Written answers"))
    assert "**q1e**\n\nNo: it is not symmetric" in entry["output"]


def test_the_new_questions_are_listed(added, graded):
    """(4) Are q1d and q1e, in notebook order, in the gradebook's and score sheet's columns, the student notebook's
    and README's lists, the shipped module's pages, the PDFs and the point tables?"""
    repo, dist, changed = added
    out, ((first_columns, _), sheet) = graded
    assert first_columns == ["submission", *AUTO, "total", "possible", "status"]
    assert sheet.splitlines()[0] == ",".join(["submission", *WRITTEN])
    columns, rows = _gradebook(out)  # with the TA's points
    assert columns == ["submission", *AUTO, *WRITTEN, "total", "possible", "status"]
    assert (rows["full.ipynb"]["q1e"], rows["full.ipynb"]["total"], rows["full.ipynb"]["possible"]) == ("1", "27", "27")
    assert rows["wrong-q1d.ipynb"]["total"] == "18.5"

    student = nbformat.read(dist / "student" / "vae_hw.ipynb", as_version=4)
    intro = next(c.source for c in student.cells if "How this notebook is graded" in c.source)
    assert f"Written questions ({', '.join(WRITTEN)})" in intro and f"Code questions ({', '.join(AUTO)})" in intro
    submission = next(c.source for c in student.cells if c.source.startswith("## Submission"))
    assert f"({', '.join(WRITTEN)})" in submission and "after page 7." in submission and "<!--" not in submission
    readme = (dist / "student" / "README.md").read_text(encoding="utf-8")
    assert "page 2 q1b, page 3 q1e, page 4 q2a" in readme and "after page 7" in readme

    spec = importlib.util.spec_from_file_location("shipped_written", dist / "student" / "vae_hw_written.py")
    shipped = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = shipped  # its dataclasses look their module up there
    spec.loader.exec_module(shipped)
    assert list(shipped.WRITTEN) == WRITTEN
    blank = json.loads((dist / "student" / "vae_hw.ipynb").read_text(encoding="utf-8"))
    assert shipped.unanswered(blank) == [*WRITTEN, *AUTO]
    assert _page_ids(dist / "vae_hw-written-template.pdf") == WRITTEN
    pdf = out / "written" / "pdf" / "full.ipynb.pdf"
    assert _page_ids(pdf) == WRITTEN and "not symmetric" in _pages(pdf)[2]

    assert {p.relative_to(repo).as_posix() for p in changed} == {
        "README.md", "solutions/README.md", "assignment/student/README.md", "assignment/vae_hw.ipynb"}
    key = (repo / "solutions" / "README.md").read_text(encoding="utf-8")
    assert "| q1d | 0 | 1 | 1 |" in key and "| **Total** | **0.25** | **18.75** | **19** |" in key
    assert "worth <!-- questions:total-points -->27<!-- /questions --> points" in key
    assert "q1b (1), q1e (1), q2a (1)" in (repo / "README.md").read_text(encoding="utf-8")
