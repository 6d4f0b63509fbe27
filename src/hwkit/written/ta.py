"""`hwkit grade`'s written half: TA pages, PDFs for Gradescope, the score sheet and its points.

``prepare`` runs before grading (a bad score sheet stops everything, the gradebook untouched);
``finish`` runs after it and returns the gradebook rows with the written points added.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hwkit.author.questions import auto_points, load_questions, written_points
from hwkit.grade.shards import Shard, select
from hwkit.grade.submissions import SUFFIXES, Ungradable, find_submissions, notebook_bytes
from hwkit.text import short_hash
from hwkit.written import scores as sheet
from hwkit.written.pages import index_page, markdown_html, question_page
from hwkit.written.rubric import Rubric, read_rubrics
from hwkit.written.student import Question, is_blank, read_questions, written_pdf


@dataclass
class Written:
    """What ``prepare`` found: the submissions, the answer key and the TA's points."""

    out: Path
    submissions: list[tuple[str, Path]]
    rubrics: dict[str, Rubric]  # one per written question of the autograder, in notebook order
    points: dict[str, dict[str, float | None]]
    prompts: dict[str, str]  # from the master notebook (the autograder's questions.json), never from a submission
    auto: dict[str, float]  # the auto-graded questions' points
    jobs: int
    assignment: str  # its name: a zip holding several notebooks is read for <assignment>.ipynb
    title: str = ""  # the homework's title, in the PDFs' running header


def prepare(paths: list[Path], out: Path, *, answer_key: Path, autograder_zip: Path, jobs: int = 1,
            shard: Shard | None = None) -> Written | None:
    """Check ``OUT/written_scores.csv`` against the submissions (shard ``shard``'s, if given) and the rubric;
    raise UsageError if bad.

    None when there is no build to work from (no answer key or no readable autograder zip): grading then
    reports what is missing.
    """
    from hwkit.author.build import read_about
    from hwkit.grade.grading import assignment_name

    try:
        questions = load_questions(autograder_zip)
        assignment = assignment_name(autograder_zip)
    except Exception:  # grade_submissions says what is wrong with the zip
        return None
    if not answer_key.is_file():
        return None
    submissions = select(find_submissions(paths), shard)
    full = written_points(questions)
    rubrics = read_rubrics(answer_key, full)
    points = sheet.read_sheet(out / sheet.SCORES_NAME, [n for n, _ in submissions], full)
    auto = auto_points(questions)
    sheet.strip_written(out / "gradebook.csv", auto, list(full))
    prompts = {q.qid: q.prompt for q in questions}
    title = str(read_about(autograder_zip).get("title") or assignment)
    return Written(out, submissions, rubrics, points, prompts, auto, max(1, jobs), assignment, title)


def _answers(path: Path, assignment: str) -> dict[str, Question]:
    try:
        return read_questions(json.loads(notebook_bytes(path, assignment)))
    except (Ungradable, ValueError):
        return {}


def file_name(name: str) -> str:
    """A submission's name as one file name (folders flattened): the name itself where it is one, else the
    name made safe plus a hash of the exact name (``alice smith`` and ``alice_smith`` get a PDF each)."""
    slug = re.sub(r"[^\w.-]+", "_", name)[:120] or "submission"
    return slug if slug == name else f"{slug}-{short_hash(name)}"


def own_pdf(path: Path) -> bool:
    """Did the student send a PDF: inside the submission's zip, or beside it with a name starting like it?"""
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                if any(n.lower().endswith(".pdf") for n in zf.namelist()):
                    return True
        except (zipfile.BadZipFile, OSError):
            return False
    # A PDF beside belongs to the submission whose name it starts with longest (bobby-written.pdf is bobby's,
    # not bob's).
    beside = list(path.parent.iterdir())
    stems = [p.stem for p in beside if p.suffix.lower() in SUFFIXES]
    return any(p.suffix.lower() == ".pdf" and p.name.startswith(path.stem)
               and max((s for s in stems if p.name.startswith(s)), key=len) == path.stem for p in beside)


def _pdf(nb_path: Path, target: Path, written: list[str], again: bool, assignment: str, title: str) -> None:
    if not again and target.exists() and target.stat().st_mtime >= nb_path.stat().st_mtime:
        return  # made from this very file, with these questions, on an earlier run
    try:
        nb = json.loads(notebook_bytes(nb_path, assignment))
    except (Ungradable, ValueError):
        nb = {"cells": []}
    try:
        written_pdf(nb, target, written=written, title=title)
    except Exception as e:  # one notebook's PDF must not stop the others, nor the pages
        print(f"hwkit: no PDF for {nb_path}: {type(e).__name__}: {e}", file=sys.stderr)


def finish(written: Written | None, rows: list[dict[str, str]]) -> tuple[list[dict[str, str]], dict[str, float]]:
    """Write ``OUT/written/`` and the score sheet; add any points to the gradebook and the rows.

    Returns the rows and the points of the written questions (empty while the sheet holds none).
    """
    if written is None:
        return rows, {}
    folder = written.out / "written"
    (folder / "pdf").mkdir(parents=True, exist_ok=True)
    names = [n for n, _ in written.submissions]
    answers = {n: _answers(p, written.assignment) for n, p in written.submissions}
    needs_pdf = [(n, p) for n, p in written.submissions if not own_pdf(p)]
    links = {n: f"pdf/{file_name(n)}.pdf" for n, _ in needs_pdf}
    order = list(written.rubrics)
    stamp = folder / "pdf" / ".questions"  # the written questions the PDFs there have pages for
    again = not stamp.is_file() or stamp.read_text(encoding="utf-8").split() != order
    with ThreadPoolExecutor(max_workers=written.jobs) as pool:
        list(pool.map(lambda np: _pdf(np[1], folder / links[np[0]], order, again, written.assignment,
                                        written.title), needs_pdf))
    stamp.write_text(" ".join(order) + "\n", encoding="utf-8")
    for q, rubric in written.rubrics.items():
        prompt = markdown_html(written.prompts.get(q, ""))
        page = question_page(q, rubric, prompt, names, [answers[n].get(q) for n in names], links,
                             cache=folder / ".cache", written=order)
        (folder / f"{q}.html").write_text(page, encoding="utf-8")
    answered = {q: {n for n in names if q in answers[n] and not is_blank(answers[n][q].text)} for q in written.rubrics}
    (folder / "index.html").write_text(
        index_page(written.rubrics, names, answered, links, str(written.out / sheet.SCORES_NAME)), encoding="utf-8")
    sheet.write_blank_sheet(written.out / sheet.SCORES_NAME, names, order)
    if not written.points:
        return rows, {}
    full = {q: r.points for q, r in written.rubrics.items()}
    merged = sheet.add_to_rows(rows, written.points, written.auto, full)
    sheet.write_gradebook(written.out / "gradebook.csv", merged)
    return merged, full
