"""The TA side of the written answers: pages, PDFs, the score sheet and its points in the gradebook."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

from hwkit.errors import UsageError
from hwkit.grade.batch import safe_name
from hwkit.grade.results import question_scores, validate_results
from hwkit.written.pages import answers_html
from hwkit.written.scores import read_sheet
from hwkit.written.student import Question

ROOT = Path(__file__).resolve().parents[1]
FULL = {"q1a": 1.0, "q1b": 1.0, "q2a": 1.0, "q3a": 2.0, "q4a": 1.0, "q5a": 1.0}
NAMES = ["alice.ipynb", "bob.zip"]


def sheet(tmp_path: Path, rows: list[list[str]]) -> Path:
    path = tmp_path / "written_scores.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["submission", *FULL], *rows])
    return path


def test_sheet_reads_points_and_blanks(tmp_path):
    """Are points read per submission, blank cells kept blank, and rows without points left out?"""
    path = sheet(tmp_path, [["alice.ipynb", "1", "0.75", "", "1.25", "0", "0.5"], ["bob.zip", "", "", "", "", "", ""]])
    assert read_sheet(path, NAMES, FULL) == {"alice.ipynb": {"q1a": 1.0, "q1b": 0.75, "q2a": None, "q3a": 1.25,
                                                             "q4a": 0.0, "q5a": 0.5}}


@pytest.mark.parametrize("row, message", [
    (["carol.ipynb", "1", "", "", "", "", ""], r"row 2, column submission: unknown submission 'carol.ipynb'"),
    (["alice.ipynb", "1.5", "", "", "", "", ""], r"row 2, column q1a: 1.5 is out of range \(0 to 1\)"),
    (["alice.ipynb", "", "", "", "-0.25", "", ""], r"row 2, column q3a: -0.25 is out of range \(0 to 2\)"),
    (["alice.ipynb", "", "0.3", "", "", "", ""], r"row 2, column q1b: 0.3 is not a multiple of 0.25"),
    (["alice.ipynb", "", "", "one", "", "", ""], r"row 2, column q2a: 'one' is not a number"),
    (["alice.ipynb", "", "", "", "", "nan", ""], r"row 2, column q4a: nan is out of range"),
])
def test_bad_sheet_gets_one_line_naming_file_row_column(tmp_path, row, message):
    """Does each kind of bad cell raise one line naming the file, the row and the column?"""
    path = sheet(tmp_path, [["bob.zip", "", "", "", "", "", ""], row][1:])
    with pytest.raises(UsageError) as e:
        read_sheet(path, NAMES, FULL)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
    assert re.search(message, str(e.value)), str(e.value)


HOSTILE_MARKDOWN = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(2)>", "[click](javascript:alert(3))",
    "![x](javascript:alert(4))", "[span]{onclick=alert(5) style=color:red}", "`<b>x</b>`{=html}",
    "```{=html}\n<script>alert(6)</script>\n```", "<iframe src=//evil></iframe>", "# Head {#id onmouseover=alert(7)}",
    "$\\href{javascript:alert(8)}{x}$", "<a href='javascript:alert(9)'>a</a>", "![x](data:text/html;base64,PHNjcmlwdD4=)",
]


def test_student_markup_never_becomes_html():
    """Is every piece of student markup shown as text: no element, attribute or link of the student's making?"""
    fragments = answers_html([Question("q1a", "written", "", [md]) for md in HOSTILE_MARKDOWN] + [None])
    assert len(fragments) == len(HOSTILE_MARKDOWN) + 1 and "(no answer)" in fragments[-1]
    tags = re.findall(r"<[^>]*>", "\n".join(fragments))  # markup; escaped student text has no "<"
    names = {re.match(r"</?([a-zA-Z0-9]+)", t).group(1).lower() for t in tags}
    assert not names & {"script", "iframe", "a", "img", "object", "embed", "style"}, names
    for tag in tags:
        assert not re.search(r"\son\w+\s*=|\s(style|id|href|src)\s*=|javascript:", tag, flags=re.I), tag
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fragments[0]


def test_submission_names_are_escaped():
    """Is a submission's file name shown as text on the TA page, whatever characters it holds?"""
    from hwkit.written.pages import question_page
    from hwkit.written.rubric import Rubric

    name = '<script>alert("name")</script>.ipynb'
    page = question_page("q1a", Rubric("q1a", 1.0, "t", "**Model answer.** $x$"), "", [name], [None],
                         {name: 'pdf/"><script>.pdf'})
    assert "<script" not in page and "&lt;script&gt;" in page and 'href="pdf/&quot;&gt;&lt;script&gt;.pdf"' in page


def test_math_is_rendered_to_mathml():
    """Is an answer's TeX math turned into MathML on the page (no script, no CDN)?"""
    [fragment] = answers_html([Question("q3a", "written", "", [r"So $\frac{1}{2}\sum_k \mu_k^2$ holds."])])
    assert "<math" in fragment and "<mfrac>" in fragment and "$" not in fragment.split("<annotation")[0]


def test_cache_survives_identical_answers_and_a_broken_entry(tmp_path):
    """Do many submissions with one answer render from a cache that a broken (empty) entry cannot crash?"""
    answer = r"So $\frac{1}{2}\sum_k \mu_k^2$ holds."
    answers_html([Question("q3a", "written", "", [answer])], tmp_path)
    [entry] = tmp_path.iterdir()
    entry.write_text("", encoding="utf-8")  # what a reader saw while another thread was writing it
    fragments = answers_html([Question("q3a", "written", "", [answer]) for _ in range(8)], tmp_path)
    assert len(fragments) == 8 and all("<mfrac>" in f for f in fragments)
    assert [p.name for p in tmp_path.iterdir()] == [entry.name]


@pytest.fixture(scope="module")
def graded(dist: Path, tmp_path_factory):
    """Three known submissions graded by the real CLI (what make grade runs)."""
    work = tmp_path_factory.mktemp("written-ta")
    subs = work / "subs"
    subs.mkdir()
    for name in ("full-credit", "blank", "q3b-missing-half"):
        shutil.copy2(dist / "known" / f"{name}.ipynb", subs / f"{name}.ipynb")
    out = work / "out"
    proc = grade(subs, out)
    assert proc.returncode == 0, proc.stderr
    return subs, out


def grade(subs: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwkit", "grade", str(subs), "-o", str(out), "--jobs", "2"],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)


def gradebook(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        return {r["submission"]: r for r in csv.DictReader(f)}


@pytest.mark.slow
def test_grade_writes_pages_pdfs_and_blank_sheet(graded, written):
    """Does grading write a page per written question with every answer, a PDF per notebook and an empty sheet?"""
    _, out = graded
    index = (out / "written" / "index.html").read_text(encoding="utf-8")
    for q in written:
        page = (out / "written" / f"{q}.html").read_text(encoding="utf-8")
        assert f'href="{q}.html"' in index and "<math" in index and "$" not in index
        assert all(n in page for n in ("full-credit.ipynb", "blank.ipynb", "q3b-missing-half.ipynb"))
        assert "<math" in page and "Model answer" in page and "Rubric" in page and "<script" not in page
        assert page.count("(no answer)") == 1  # the blank notebook's
    for name in ("full-credit", "blank", "q3b-missing-half"):
        assert len(PdfReader(out / "written" / "pdf" / f"{name}.ipynb.pdf").pages) == 6
    with open(out / "written_scores.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["submission", *written] and len(rows) == 4 and all(set(r[1:]) == {""} for r in rows[1:])
    book = gradebook(out)
    assert book["full-credit.ipynb"]["total"] == "18" and book["full-credit.ipynb"]["possible"] == "18"
    assert "q1a" not in book["full-credit.ipynb"]


@pytest.mark.slow
def test_results_json_shows_the_written_answers(graded, written):
    """Does results.json carry the written answers in a zero-point, visible Markdown entry?"""
    _, out = graded
    for name, expect in (("full-credit.ipynb", "strict concavity"), ("blank.ipynb", "(no answer)")):
        results = json.loads((out / "feedback" / safe_name(name) / "results.json").read_text(encoding="utf-8"))
        validate_results(results)
        [entry] = [t for t in results["tests"] if t["name"].startswith("Written answers")]
        assert entry["visibility"] == "visible" and entry["output_format"] == "md" and "score" not in entry
        assert expect in entry["output"] and all(f"**{q}**" in entry["output"] for q in written)
        assert "Written" not in question_scores(results)  # the entry carries no points


@pytest.mark.slow
def test_filled_sheet_counts_out_of_25_and_bad_sheets_change_nothing(graded, written):
    """Do the TA's points reach the gradebook and report (out of 25), and does each bad sheet fail in one line,
    leaving the gradebook as it was?"""
    subs, out = graded
    auto = float(gradebook(out)["q3b-missing-half.ipynb"]["total"])
    scores = out / "written_scores.csv"
    good = [["full-credit.ipynb", "1", "1", "1", "2", "1", "1"], ["blank.ipynb", "0", "0", "0", "0", "0", "0"],
            ["q3b-missing-half.ipynb", "1", "0.75", "1", "1.5", "", ""]]
    with open(scores, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["submission", *written], *good])
    proc = grade(subs, out)
    assert proc.returncode == 0, proc.stderr
    book = gradebook(out)
    assert (book["full-credit.ipynb"]["total"], book["full-credit.ipynb"]["possible"]) == ("25", "25")
    assert (book["blank.ipynb"]["total"], book["q3b-missing-half.ipynb"]["total"]) == ("0", f"{auto + 4.25:g}")
    assert book["q3b-missing-half.ipynb"]["q4a"] == "" and book["q3b-missing-half.ipynb"]["q1b"] == "0.75"
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "q5a" in report and "/ 25" in report
    before = (out / "gradebook.csv").read_bytes()
    for bad, where in ((["nobody.ipynb", "1", "", "", "", "", ""], "row 3, column submission"),
                       (["blank.ipynb", "", "", "", "2.5", "", ""], "row 3, column q3a"),
                       (["blank.ipynb", "", "", "", "", "0.1", ""], "row 3, column q4a"),
                       (["blank.ipynb", "", "x", "", "", "", ""], "row 3, column q1b")):
        with open(scores, "w", newline="", encoding="utf-8") as f:  # the blank notebook's row (row 3) goes bad
            csv.writer(f).writerows([["submission", *written], good[0], bad, good[2]])
        proc = grade(subs, out)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode != 0 and len(lines) == 1 and str(scores) in lines[0] and where in lines[0], proc.stderr
        assert (out / "gradebook.csv").read_bytes() == before
    with open(scores, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["submission", *written], *good])
    assert grade(subs, out).returncode == 0
    assert gradebook(out)["full-credit.ipynb"]["total"] == "25"  # a re-run does not count the points twice


def test_student_folder_and_requirements(dist, written):
    """Does dist/student/ ship the PDF module as in the source but for the written questions, the assignment's name
    and the title filled in (and no import of the toolkit), pinned requirements with torch 2.13.0 and the PDF route, and a README; and does the
    Gradescope image stay without the PDF route?"""
    from hwkit.written import student as source

    folder = dist / "student"
    shipped = (folder / "vae_hw_written.py").read_text(encoding="utf-8")
    filled = {f"WRITTEN: tuple[str, ...] = {tuple(written)!r}": "WRITTEN: tuple[str, ...] = ()",
              "NAME = 'vae_hw'": 'NAME = ""', "TITLE = 'VAE homework'": 'TITLE = ""'}
    unfilled = shipped
    for line, blank in filled.items():
        assert line in shipped, line
        unfilled = unfilled.replace(line, blank)
    assert unfilled == Path(source.__file__).read_text(encoding="utf-8")
    assert not re.search(r"^\s*(import|from)\s+(hwkit|\.)", shipped, flags=re.M)
    pins = [line for line in (folder / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", p) for p in pins), pins
    assert {"torch==2.13.0", "typst==0.15.2", "pypandoc-binary==1.17", "pypdf==7.1.1"} <= set(pins)
    assert "requirements.txt" in (folder / "README.md").read_text() and (folder / "vae_hw.ipynb").is_file()
    image = (ROOT / "autograder" / "requirements.txt").read_text()
    assert not re.search(r"^(typst|pypandoc|pypdf)", image, flags=re.M | re.I)
    dev = (ROOT / "requirements.txt").read_text()
    assert all(p in dev.splitlines() for p in ("typst==0.15.2", "pypandoc-binary==1.17", "pypdf==7.1.1"))


def test_readme_pictures_exist():
    """Are the README's pictures of a PDF page and a TA page committed PNGs?"""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("docs/written-pdf-page.png", "docs/written-ta-page.png"):
        assert f"({name})" in readme and (ROOT / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
