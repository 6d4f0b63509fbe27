"""The known submissions in solutions/ get exactly their expected scores through the real autograder."""

from __future__ import annotations

import pytest


from conftest import definitions, otter_sample


@pytest.mark.slow
def test_full_credit_scores_every_point(graded_known, points):
    """Does the full-credit notebook score every auto-graded point through the autograder zip?"""
    row = graded_known["full-credit.ipynb"]
    assert row["status"] == "ok"
    assert {q: float(row[q]) for q in points} == points
    assert float(row["total"]) == float(row["possible"]) == sum(points.values())


@pytest.mark.slow
def test_blank_scores_zero(graded_known, points):
    """Does the blank student notebook score 0 on every auto-graded question?"""
    row = graded_known["blank.ipynb"]
    assert row["status"] == "ok"
    assert {q: float(row[q]) for q in points} == {q: 0.0 for q in points}


@pytest.mark.slow
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


@pytest.mark.slow
def test_otter_run_gives_the_same_scores(known, graded_known, graded_known_otter, points):
    """Does otter's own `otter run` give the same scores as make grade, on a sample covering every question?"""
    sample = otter_sample(known)
    for k in sample:
        ours, otters = graded_known[k.path.name], graded_known_otter[k.path.name]
        assert otters["status"] == "ok", k.name
        assert {q: float(ours[q]) for q in points} == {q: float(otters[q]) for q in points}, k.name


def test_the_otter_sample_covers_every_question_and_kind_of_mistake(known, points):
    """Does the `otter run` sample hold both bases, for every question a mistake of each kind the corpus has (all of
    the question's points lost, part of them lost), and a correct variant of every answer that has one, in under
    half of the corpus?"""
    sample = otter_sample(known)
    assert {"full-credit", "blank"} <= {k.name for k in sample}
    for q in points:
        corpus = [k for k in known if k.name.startswith(f"{q}-")]
        picked = [k for k in sample if k.name.startswith(f"{q}-")]
        assert picked, f"no mistake of {q} in the sample"
        assert {k.expected[q] == 0 for k in picked} == {k.expected[q] == 0 for k in corpus}, q
    reference = definitions(next(k for k in known if k.name == "full-credit").path)

    def changed(k) -> set[str]:
        defs = definitions(k.path)
        return {n for n in defs.keys() | reference.keys() if defs.get(n) != reference.get(n)}

    answers = set().union(*(changed(k) for k in known if k.name.startswith("correct-")))
    covered = set().union(*(changed(k) for k in sample if k.name.startswith("correct-")))
    assert answers and covered == answers, f"answers whose correct variants are all left out: {answers - covered}"
    assert len(sample) < len(known) / 2
