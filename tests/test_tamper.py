"""Attacks on the grader (solutions/tamper_submissions.yaml) score exactly what the mistake they start from scores.

Every attack is graded twice: by `make grade`'s runner and by the Gradescope autograder zip run as
Gradescope runs it. The comparisons happen in the verdict process, which never runs student code,
so patching comparisons or grading code, forging messages or files, exiting early and leaving
processes behind all leave the score where the wrong answer puts it.
"""

from __future__ import annotations

import csv
import os
import pickle
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from vaehw.grade import grade_submissions
from vaehw.gradescope import check
from vaehw.known import materialise_known
from vaehw.questions import QUESTIONS
from vaehw.results import question_scores

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
ISOLATED = os.geteuid() == 0  # the minimal root and a user id of its own need root, as on Gradescope


@pytest.fixture(scope="module")
def tamper(dist, points, tmp_path_factory):
    out = tmp_path_factory.mktemp("tamper-dist")
    for part in ("autograder", "student"):
        os.symlink(dist / part, out / part)
    return materialise_known(spec=ROOT / "solutions" / "tamper_submissions.yaml", dist=out, points=points,
                             baselines=ROOT / "solutions" / "known_submissions.yaml", folder="tamper")


@pytest.fixture(scope="module")
def graded_tamper(tamper, autograder_zip, tmp_path_factory) -> dict[str, dict[str, str]]:
    out = tmp_path_factory.mktemp("graded-tamper")
    grade_submissions([k.path for k in tamper], out=out, autograder_zip=autograder_zip,
                      jobs=os.cpu_count() or 2, timeout=600, progress=None)
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        return {row["submission"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def gradescope_tamper(tamper, autograder_zip, tmp_path_factory) -> dict[str, tuple[dict, str]]:
    out = tmp_path_factory.mktemp("gradescope-tamper")

    def one(k):
        results = check(k.path, autograder_zip=autograder_zip, out=out / k.name)
        return k.name, (results, (out / k.name / "stdout").read_text(errors="replace"))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(pool.map(one, tamper))


def test_the_corpus_covers_every_attack(tamper):
    """Does the corpus hold each attack the grader must withstand, each on a known mistake?"""
    names = {k.name for k in tamper}
    assert {"tamper-patch-comparisons", "tamper-patch-otter", "tamper-patch-grader", "tamper-rewrite-files",
            "tamper-forged-results-json", "tamper-os-exit", "tamper-sys-exit", "tamper-background-process",
            "tamper-read-everything"} <= names
    assert all(k.baseline for k in tamper)


def test_no_attack_scores_more_than_its_baseline_through_make_grade(tamper, graded_tamper, graded_known):
    """Through make grade's runner, does every attack score exactly its baseline mistake's expected scores?"""
    for k in tamper:
        row, base = graded_tamper[k.path.name], graded_known[f"{k.baseline}.ipynb"]
        got = {q: float(row[q]) for q in QUESTIONS}
        assert got == k.expected, f"{k.name}: {got} (status {row['status']})"
        assert all(got[q] <= float(base[q]) for q in QUESTIONS), k.name


def test_no_attack_scores_more_than_its_baseline_on_gradescope(tamper, gradescope_tamper):
    """Through the Gradescope autograder, the same; and the student-facing output repeats nothing forged."""
    for k in tamper:
        results, stdout = gradescope_tamper[k.name]
        got = question_scores(results)
        assert got == k.expected, f"{k.name}: {got}; {results.get('output')}"
        assert results["score"] == sum(k.expected.values())
        assert "forged" not in stdout and "All tests passed" not in stdout


@pytest.mark.skipif(not ISOLATED, reason="the minimal root needs root; without it the notebook sees the whole filesystem")
def test_reading_every_readable_file_finds_nothing_hidden(gradescope_tamper, graded_tamper):
    """Did the notebook that reads every file it can find no hidden test, reference solution or expected value?

    Its first cell reads every file under / and, after each later cell, would set the right q2b had
    it found one, and sets a wrong q4b once it has read 2000 files or more (so the search did run).
    """
    for scores in ({q: float(v) for q, v in graded_tamper["tamper-read-everything.ipynb"].items() if q in QUESTIONS},
                   question_scores(gradescope_tamper["tamper-read-everything"][0])):
        assert scores["q2b"] == 0, "a hidden test, reference solution or expected value was readable"
        assert scores["q4b"] == 0, "the search did not run"


class _Marker:
    """A pickle that, if ever unpickled, creates a file."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_pickles_in_a_zip_submission_never_run(known, autograder_zip, tmp_path):
    """Is a zip with a crafted .OTTER_LOG and other pickles graded from its notebook alone, nothing unpickled?"""
    marker = tmp_path / "unpickled"
    upload = tmp_path / "vae_hw_2026_11_25.zip"
    wrong = next(k for k in known if k.name == "q1c-sign-flipped")
    with zipfile.ZipFile(upload, "w") as zf:
        zf.write(wrong.path, "vae_hw.ipynb")
        for name in (".OTTER_LOG", "results.pkl", "vae_hw.pickle", "data/digits.npz"):
            zf.writestr(name, pickle.dumps(_Marker(marker)))
    assert not marker.exists()
    pickle.loads(pickle.dumps(_Marker(tmp_path / "works")))  # the payload is live: unpickling it does create a file
    assert (tmp_path / "works").exists()
    results = check(upload, autograder_zip=autograder_zip, out=tmp_path / "gradescope")
    grade_submissions([upload], out=tmp_path / "grades", autograder_zip=autograder_zip, jobs=1, timeout=600, progress=None)
    with open(tmp_path / "grades" / "gradebook.csv", newline="", encoding="utf-8") as f:
        [row] = list(csv.DictReader(f))
    assert not marker.exists()
    assert question_scores(results) == wrong.expected
    assert {q: float(row[q]) for q in QUESTIONS} == wrong.expected


def test_the_comparison_attack_is_live_where_tests_run_in_the_kernel(tamper, autograder_zip, graded_known):
    """Graded by `otter run`, which runs the tests in the student's kernel, does the attack lift q2d?

    This is what the split into probes and verdicts prevents; the attack must be a real one.
    """
    from vaehw.runner import run_otter

    attack = next(k for k in tamper if k.name == "tamper-patch-comparisons")
    result = run_otter(attack.path.read_bytes(), autograder_zip=autograder_zip, timeout=600)
    assert result.scores["q2d"] > float(graded_known[f"{attack.baseline}.ipynb"]["q2d"]) == attack.expected["q2d"]
