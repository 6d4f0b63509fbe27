"""The gradebook keeps finished rows across runs and prints a readable table."""

from __future__ import annotations

import csv

from hwkit.report.gradebook import Gradebook, columns, format_table

QUESTIONS = ["q1c", "q2b", "q2c", "q2d", "q3b", "q4b", "q5b", "q6a", "q6b"]


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_rows_survive_a_restart_and_force_clears_them(tmp_path):
    """Is a row written at once, kept by a re-run (so it is skipped), and dropped with --force?"""
    path = tmp_path / "gradebook.csv"
    book = Gradebook(path, QUESTIONS)
    book.add("alice.ipynb", {"q1c": 2.0, "q3b": 0.5}, 18.0, "ok")
    rows = _read(path)  # written before the batch ends
    assert [r["submission"] for r in rows] == ["alice.ipynb"]
    assert rows[0]["q1c"] == "2" and rows[0]["q3b"] == "0.5" and rows[0]["total"] == "2.5" and rows[0]["q2b"] == "0"
    again = Gradebook(path, QUESTIONS)
    assert set(again.rows) == {"alice.ipynb"}
    again.add("bob.ipynb", {}, 18.0, "timeout after 5 s")
    assert [r["submission"] for r in _read(path)] == ["alice.ipynb", "bob.ipynb"]
    assert list(_read(path)[0]) == columns(QUESTIONS)
    assert Gradebook(path, QUESTIONS, force=True).rows == {} and _read(path) == []


def test_table_has_every_question_and_a_mean_row(tmp_path):
    """Does the printed table show each question, each total and the class mean?"""
    book = Gradebook(tmp_path / "g.csv", QUESTIONS)
    rows = [book.add("a.ipynb", {q: 1.0 for q in QUESTIONS}, 18.0, "ok"), book.add("b.ipynb", {}, 18.0, "kernel died")]
    table = format_table(rows, QUESTIONS)
    header, _, a, b, mean = table.splitlines()
    assert all(q in header for q in QUESTIONS)
    assert "9/18" in a and "kernel died" in b and mean.startswith("(mean)") and "4.50" in mean


def test_rows_of_other_questions_are_graded_again(tmp_path):
    """Is a gradebook written with another build's questions (a question added since) started afresh, not resumed?"""
    path = tmp_path / "gradebook.csv"
    Gradebook(path, QUESTIONS).add("alice.ipynb", {"q1c": 2.0}, 18.0, "ok")
    assert set(Gradebook(path, QUESTIONS).rows) == {"alice.ipynb"}
    book = Gradebook(path, [*QUESTIONS, "q7a"])
    assert book.rows == {} and list(_read(path)) == [] and "q7a" in path.read_text().splitlines()[0]


def test_finished_gradebook_is_in_the_folders_order(tmp_path):
    """Rows are appended as submissions finish; is the finished file in the folder's order (so one run and a
    merge of shards write the same file), with rows of names not in that order kept, last?"""
    path = tmp_path / "gradebook.csv"
    book = Gradebook(path, QUESTIONS)
    for name in ("c.ipynb", "old.ipynb", "a.ipynb", "b.ipynb"):
        book.add(name, {"q1c": 2.0}, 18, "ok")
    book.sort(["a.ipynb", "b.ipynb", "c.ipynb"])
    assert [r["submission"] for r in _read(path)] == ["a.ipynb", "b.ipynb", "c.ipynb", "old.ipynb"]
    assert list(book.rows) == ["a.ipynb", "b.ipynb", "c.ipynb", "old.ipynb"]
    assert not path.with_name("gradebook.csv.tmp").exists()
