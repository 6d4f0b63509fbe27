"""The corpus of known submissions: every mistake loses points and says why, every correct variant keeps every point.

Known submissions named ``<question>-<mistake>`` are mistakes in one definition of that question;
``correct-*`` are correct answers written differently; ``full-credit`` and ``blank`` are the bases.
Scores are compared exactly by test_known_submissions.py; here: what each kind must show.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from hwkit.grade.batch import safe_name
from hwkit.author.known import top_level_nodes

BASES = ("full-credit", "blank")


def _mistakes(known) -> list:
    return [k for k in known if k.name not in BASES and not k.name.startswith("correct-")]


def _correct(known) -> list:
    return [k for k in known if k.name.startswith("correct-")]


def _question(k) -> str:
    """The question a mistake breaks: the prefix of its name."""
    return k.name.split("-", 1)[0]


def _definitions(path: Path) -> dict[str, str]:
    """Top-level functions, classes and assignments of a notebook's code cells: name -> normalised source."""
    found: dict[str, str] = {}
    for _, node in top_level_nodes(nbformat.read(path, as_version=4)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            found[node.name] = ast.unparse(node)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = ast.unparse(node)
    return found


def _feedback_sections(text: str) -> dict[str, str]:
    """feedback.txt split by question: q -> its score line and the messages under it."""
    sections, current = {}, None
    for line in text.splitlines():
        head = re.match(r"^(q\d[a-z]): ", line)
        if head:
            current = head.group(1)
            sections[current] = line + "\n"
        elif current and line.startswith("    "):
            sections[current] += line + "\n"
        else:
            current = None
    return sections


def _feedback(graded_known_dir: Path, k) -> str:
    return (graded_known_dir / "feedback" / safe_name(k.path.name) / "feedback.txt").read_text(encoding="utf-8")


def test_corpus_is_large_enough_and_covers_every_question(known, points):
    """Are there at least 40 mistakes, covering every auto-graded question, and at least 15 correct variants?"""
    mistakes = _mistakes(known)
    assert len(mistakes) >= 40, len(mistakes)
    assert len(_correct(known)) >= 15, len(_correct(known))
    by_question = {q: [k.name for k in mistakes if _question(k) == q] for q in points}
    assert all(len(names) >= 3 for names in by_question.values()), by_question


def test_every_mistake_is_named_after_its_question_and_documented(known, points):
    """Is every mistake named <question>-<mistake>, with an about, a message, and fewer expected points on that question only?"""
    for k in _mistakes(known):
        q = _question(k)
        assert q in points, f"{k.name}: name it <question>-<mistake>"
        assert k.about.strip(), f"{k.name}: no about"
        assert k.message.strip(), f"{k.name}: no message"
        assert k.expected[q] < points[q], f"{k.name}: expects full marks on {q}"


def test_every_correct_variant_expects_every_point(known, points):
    """Does every correct-* variant expect full marks on every question?"""
    for k in _correct(known):
        assert k.expected == points, k.name
        assert not k.message, f"{k.name}: a correct variant gets no failure message"


def test_every_mistake_differs_from_full_credit_in_one_definition(known):
    """Does every mistake change exactly one definition (function, class or answer) of the full-credit notebook?"""
    reference = _definitions(next(k for k in known if k.name == "full-credit").path)
    for k in _mistakes(known):
        defs = _definitions(k.path)
        changed = {n for n in defs.keys() | reference.keys() if defs.get(n) != reference.get(n)}
        assert len(changed) == 1, f"{k.name} changes {sorted(changed)}"


@pytest.mark.slow
def test_every_mistake_loses_points_on_the_question_it_breaks(known, graded_known, points):
    """Does every mistake, graded through the autograder, score less than full marks on its question (mutation score 100%)?"""
    survivors = []
    for k in _mistakes(known):
        row, q = graded_known[k.path.name], _question(k)
        if row["status"] != "ok" or float(row[q]) >= points[q]:
            survivors.append(f"{k.name}: {q} = {row[q]} / {points[q]:g} ({row['status']})")
    assert not survivors, "mistakes that keep every point:\n" + "\n".join(survivors)


@pytest.mark.slow
def test_every_correct_variant_keeps_every_point(known, graded_known, points):
    """Does every correct-* variant, graded through the autograder, score full marks on every question (no false fails)?"""
    false_fails = []
    for k in _correct(known):
        row = graded_known[k.path.name]
        lost = {q: float(row[q]) for q in points if float(row[q]) != points[q]}
        if row["status"] != "ok" or lost:
            false_fails.append(f"{k.name}: {lost} ({row['status']})")
    assert not false_fails, "correct variants that lose points:\n" + "\n".join(false_fails)


@pytest.mark.slow
def test_every_mistake_gets_its_message_under_its_question(known, graded_known, graded_known_dir):
    """Does every mistake's feedback.txt name the mistake, under the question it breaks?"""
    missing = []
    for k in _mistakes(known):
        assert k.path.name in graded_known, k.name
        section = _feedback_sections(_feedback(graded_known_dir, k)).get(_question(k), "")
        if k.message not in section:
            missing.append(f"{k.name}: {k.message!r} not under {_question(k)} in\n{section}")
    assert not missing, "\n".join(missing)


@pytest.mark.slow
def test_correct_variants_get_no_failure_messages(known, graded_known, graded_known_dir, points):
    """Is the feedback of every correct-* variant free of failure messages?"""
    for k in _correct(known):
        sections = _feedback_sections(_feedback(graded_known_dir, k))
        assert set(sections) == set(points), k.name
        assert all(s.count("\n") == 1 for s in sections.values()), f"{k.name}:\n" + "".join(sections.values())
