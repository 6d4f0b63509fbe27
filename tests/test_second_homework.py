"""A second homework (tests/homeworks/softmax_hw: softmax and cross-entropy) goes through the same commands as
the VAE homework, chosen with ASSIGNMENT= and built into its own DIST=, as an instructor would run them:
`make assign`, `make grade` (its known submissions, the report, the written answers' pages) and
`make gradescope-check` (its autograder zip on the full-credit notebook).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

from hwkit.author.known import materialise_known
from hwkit.author.questions import question_points

pytestmark = pytest.mark.slow  # one build, four gradings and one Gradescope run (about 1.5 minutes on 2 cores)

ROOT = Path(__file__).resolve().parents[1]
HOMEWORK = ROOT / "tests" / "homeworks" / "softmax_hw"
MASTER = HOMEWORK / "assignment" / "softmax_hw.ipynb"


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args, f"ASSIGNMENT={MASTER.relative_to(ROOT)}"],
                          cwd=ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """``make assign ASSIGNMENT=<the softmax master> DIST=<tmp>``: the second homework's build."""
    dist = tmp_path_factory.mktemp("softmax-dist")
    proc = make("assign", f"DIST={dist}", "JOBS=2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dist


@pytest.fixture(scope="module")
def graded(built: Path) -> Path:
    """``make grade`` of the second homework's known submissions; the output folder."""
    proc = make("grade", f"DIST={built}", "JOBS=2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return built / "grades"


def test_build_is_named_after_the_second_homework(built):
    """Is everything built named softmax_hw, with nothing of the VAE homework in it, and dist/ left alone?"""
    for rel in ("softmax_hw-autograder.zip", "softmax_hw-written-template.pdf", "student/softmax_hw.ipynb",
                "student/softmax_hw_written.py", "student/requirements.txt", "student/README.md",
                "autograder/softmax_hw.ipynb", "solutions/softmax_hw-solutions.html",
                "solutions/softmax_hw-solutions.pdf", "known/full-credit.ipynb", "known/blank.ipynb"):
        assert (built / rel).is_file(), rel
    assert not [p for p in built.rglob("*") if "vae" in p.name.lower()]
    assert not (built / "tamper").exists()  # a homework without attacks of its own
    assert list(question_points(built / "softmax_hw-autograder.zip")) == ["q1b", "q2a"]
    assert "q1a" in (built / "student" / "README.md").read_text(encoding="utf-8")


def test_known_submissions_score_as_expected(built, graded):
    """Does `make grade` give each known submission of the second homework exactly its expected scores?"""
    expected = {f"{k.name}.ipynb": k.expected for k in materialise_known(
        spec=HOMEWORK / "solutions" / "known_submissions.yaml", dist=built,
        points=question_points(built / "softmax_hw-autograder.zip"))}
    with open(graded / "gradebook.csv", newline="", encoding="utf-8") as f:
        rows = {r["submission"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(expected) == {"full-credit.ipynb", "blank.ipynb", "q1b-no-max-shift.ipynb",
                                          "q2a-sum-not-mean.ipynb"}
    for name, scores in expected.items():
        assert rows[name]["status"] == "ok", (name, rows[name])
        assert {q: float(rows[name][q]) for q in scores} == scores, name
    assert rows["full-credit.ipynb"]["total"] == "4" and rows["full-credit.ipynb"]["possible"] == "4"
    feedback = next((graded / "feedback").glob("q1b-no-max-shift.ipynb*")) / "feedback.txt"
    assert "subtract each row's maximum" in feedback.read_text(encoding="utf-8")


def test_report_and_written_answers(graded):
    """Does the report cover the second homework's questions, and the written half its one written question?"""
    report = (graded / "report.html").read_text(encoding="utf-8")
    assert ">q1b<" in report and ">q2a<" in report and ">q6a<" not in report  # its cells, not its pictures
    assert (graded / "written" / "q1a.html").is_file()
    with open(graded / "written_scores.csv", newline="", encoding="utf-8") as f:
        assert next(csv.reader(f))[1:] == ["q1a"]
    pages = PdfReader(graded / "written" / "pdf" / "full-credit.ipynb.pdf").pages
    assert len(pages) == 1 and "Softmax homework: written answers q1a" in re.sub(r"\s+", " ", pages[0].extract_text())


def test_gradescope_check_gives_full_marks(built, tmp_path):
    """Does the second homework's autograder zip, run as Gradescope runs it, give the full-credit notebook 4/4?"""
    out = tmp_path / "gs"
    proc = make("gradescope-check", f"DIST={built}", f"SUBMISSION={built / 'known' / 'full-credit.ipynb'}", f"OUT={out}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    scored = [t for t in results["tests"] if t.get("max_score")]
    assert sum(t["score"] for t in scored) == sum(t["max_score"] for t in scored) == 4
    assert {t["name"].split()[0] for t in scored} == {"q1b", "q2a"}


def test_shipped_pdf_module_is_the_second_homeworks(built, tmp_path, capsys, monkeypatch):
    """Does the student's <name>_written.py carry the second homework's name, title and written question?"""
    spec = importlib.util.spec_from_file_location("softmax_hw_written", built / "student" / "softmax_hw_written.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    assert (module.NAME, module.TITLE, module.WRITTEN) == ("softmax_hw", "Softmax homework", ("q1a",))
    shutil.copy2(built / "known" / "full-credit.ipynb", tmp_path / "softmax_hw.ipynb")
    module.export_written(str(tmp_path / "softmax_hw.ipynb"), str(tmp_path / module.PDF_NAME))
    assert module.PDF_NAME == "softmax_hw-written.pdf" and (tmp_path / module.PDF_NAME).is_file()
    assert "softmax_hw-written.pdf (1 pages)" in capsys.readouterr().out


def test_missing_master_gets_one_line(tmp_path):
    """Does `make assign` with ASSIGNMENT= naming no file stop with one hwkit error line and a non-zero status?"""
    proc = subprocess.run(["make", "--no-print-directory", "assign", "ASSIGNMENT=homeworks/nope/assignment/nope.ipynb",
                           f"DIST={tmp_path}"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("hwkit:")]
    assert errors == ["hwkit: error: master notebook not found: homeworks/nope/assignment/nope.ipynb"], proc.stderr
    assert "Traceback" not in proc.stderr and not list(tmp_path.iterdir())
