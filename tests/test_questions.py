"""The questions come from the master notebook alone: read and checked there, shipped in questions.json, and
written into every list and point table of the prose."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from hwkit.errors import UsageError
from hwkit.author.lists import fill, update
from hwkit.author.questions import QUESTIONS_JSON, load_questions, questions_json, read_master

ROOT = Path(__file__).resolve().parents[1]
MASTER = ROOT / "assignment" / "vae_hw.ipynb"


def test_the_build_ships_the_master_notebooks_questions(dist, autograder_zip):
    """Do dist/questions.json and the zip's questions.json hold exactly the questions read from the master notebook?"""
    questions = read_master(MASTER)
    assert [(q.qid, q.kind, q.points) for q in questions][:3] == [("q1a", "written", 1.0), ("q1b", "written", 1.0),
                                                                  ("q1c", "auto", 2.0)]
    assert load_questions(dist) == load_questions(autograder_zip) == questions
    with zipfile.ZipFile(dist / "autograder" / "otter-autograder.zip") as zf:  # what `grade --docker` reads
        assert zf.read(QUESTIONS_JSON).decode("utf-8") == questions_json(questions)
    assert not (dist / "student" / QUESTIONS_JSON).exists()  # it names the hidden tests


def test_tracked_lists_and_tables_are_up_to_date():
    """Do the READMEs, the answer key and the master notebook show the lists and points `hwkit lists` writes?"""
    assert update(ROOT, read_master(MASTER), check=True) == [], "run `make assign` (or `python -m hwkit lists`)"


def _notebook(tmp_path: Path, cells: list[tuple[str, str]]) -> Path:
    nb = {"cells": [{"cell_type": kind, "metadata": {}, "source": src} for kind, src in cells],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "master.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


TEST = '""" # BEGIN TEST CONFIG\npoints: {points}\nhidden: {hidden}\n""" # END TEST CONFIG\ndef test_{name}(f):\n    pass\n'


def _auto(qid: str, points, prompt: str | None = None, tests=((0, "false"), (1, "true"))) -> list[tuple[str, str]]:
    return [("raw", f"# BEGIN QUESTION\nname: {qid}\npoints: {points}"),
            ("markdown", prompt or f"**{qid} (code, {points} point{'s' * (points != 1)}).** Write f."),
            ("raw", "# BEGIN TESTS"),
            *[("code", TEST.format(points=p, hidden=h, name=f"{qid}_{i}")) for i, (p, h) in enumerate(tests)],
            ("raw", "# END TESTS"), ("raw", "# END QUESTION")]


def test_questions_are_read_in_notebook_order_with_their_tests(tmp_path):
    """Are ids, kinds, points, prompts and each test's points and visibility read as the notebook sets them?"""
    written = [("raw", "# BEGIN QUESTION\nname: q2a\nmanual: true\npoints: 2"),
               ("markdown", "**q2a (written, 2 points).** Derive it."), ("raw", "# BEGIN SOLUTION"),
               ("markdown", "The answer."), ("raw", "# END SOLUTION"), ("raw", "# END QUESTION")]
    [q2a, q1c] = read_master(_notebook(tmp_path, written + _auto("q1c", 1)))
    assert (q2a.qid, q2a.kind, q2a.points, q2a.prompt, q2a.tests) == ("q2a", "written", 2.0,
                                                                      "**q2a (written, 2 points).** Derive it.", ())
    assert (q1c.qid, q1c.kind, q1c.points) == ("q1c", "auto", 1.0)
    assert [(t.name, t.points, t.hidden) for t in q1c.tests] == [("test_q1c_0", 0.0, False), ("test_q1c_1", 1.0, True)]


@pytest.mark.parametrize("cells, problem", [
    (_auto("q1c", 2), "tests add up to 1"),
    (_auto("q1c", 1, prompt="**q1c (code, 2 points).** Write f."), "its prompt must start with **q1c (code, 1 point).**"),
    (_auto("q1c", 1, prompt="**q1d (code, 1 point).** Write f."), "its prompt must start"),
    (_auto("q1c", 1)[:2] + _auto("q1c", 1)[-1:], "an auto-graded question needs tests"),
    ([("raw", "# BEGIN QUESTION\nname: q1a\nmanual: true"), ("markdown", "**q1a (written, 1 point).** Say."),
      ("raw", "# END QUESTION")], "give the question its `points:`"),
    (_auto("q1c", 1) + _auto("q1c", 1), "a question id appears twice: q1c"),
    (_auto("Q 1", 1), "an id is q, a number and a letter"),
])
def test_an_ill_formed_question_fails_the_build_in_one_line(tmp_path, cells, problem):
    """Does a question the toolkit could not list, grade or page correctly stop the build, saying why?"""
    with pytest.raises(UsageError, match="^.*$") as e:
        read_master(_notebook(tmp_path, cells))
    assert problem in str(e.value) and "\n" not in str(e.value)


def test_every_generated_part_is_known():
    """Does a marker naming no generated part fail, rather than stay as it was?"""
    questions = read_master(MASTER)
    assert fill("(<!-- questions:written -->old<!-- /questions -->)", questions, keep_marks=False) == \
        "(q1a, q1b, q2a, q3a, q4a, q5a)"
    with pytest.raises(UsageError, match="unknown generated part"):
        fill("<!-- questions:writen -->q1a<!-- /questions -->", questions)
