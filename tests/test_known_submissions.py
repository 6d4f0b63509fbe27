"""The known submissions in solutions/ get exactly their expected scores through the real autograder."""

from __future__ import annotations

import pytest


from conftest import otter_sample

pytestmark = pytest.mark.slow


def test_full_credit_scores_every_point(graded_known, points):
    """Does the full-credit notebook score every auto-graded point through the autograder zip?"""
    row = graded_known["full-credit.ipynb"]
    assert row["status"] == "ok"
    assert {q: float(row[q]) for q in points} == points
    assert float(row["total"]) == float(row["possible"]) == sum(points.values())


def test_blank_scores_zero(graded_known, points):
    """Does the blank student notebook score 0 on every auto-graded question?"""
    row = graded_known["blank.ipynb"]
    assert row["status"] == "ok"
    assert {q: float(row[q]) for q in points} == {q: 0.0 for q in points}


def test_every_known_submission_scores_as_expected(known, graded_known, points):
    """Does every known submission score exactly its expected points on every question?"""
    wrong = []
    for k in known:
        row = graded_known[k.path.name]
        got = {q: float(row[q]) for q in points}
        if row["status"] != "ok" or got != k.expected:
            diff = {q: (got[q], k.expected[q]) for q in points if got[q] != k.expected[q]}
            wrong.append(f"{k.name}: status {row['status']}, (got, expected) {diff}")
    assert not wrong, "\n".join(wrong)


def test_every_mistake_loses_points(known):
    """Does every known mistake expect fewer points than full credit (so the corpus tests something)?"""
    full = next(k for k in known if k.name == "full-credit").expected
    for k in known:
        if k.name != "full-credit" and not k.name.startswith("correct-"):  # correct-* variants keep every point
            assert sum(k.expected.values()) < sum(full.values()), k.name


def test_otter_run_gives_the_same_scores(known, graded_known, graded_known_otter, points):
    """Does otter's own `otter run` give the same scores as make grade, on a sample covering every question?"""
    sample = otter_sample(known)
    assert {k.name.split("-")[0] for k in sample} >= set(points) | {"full", "blank", "correct"}
    for k in sample:
        ours, otters = graded_known[k.path.name], graded_known_otter[k.path.name]
        assert otters["status"] == "ok", k.name
        assert {q: float(ours[q]) for q in points} == {q: float(otters[q]) for q in points}, k.name
