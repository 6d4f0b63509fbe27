"""The hidden tests never fail a correct answer, whatever seed they run under.

Every test case of the autograder zip runs in-process (no notebook execution) on the reference
solutions and on every ``correct-*`` known submission, with each ``torch.manual_seed`` the tests
call shifted by a different amount in each run (as ``make calibrate`` does). The reference runs
every case; a correct variant runs the cases whose parameters name a definition it changes, so
the training test of q6a (about 1 s) runs only on the variants of ``VAE``.
Two spawned worker processes, one torch thread each.
"""

from __future__ import annotations

import ast
import inspect
import multiprocessing
import os
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from hwkit.author.known import top_level_nodes


SEEDS = 30  # seed shifts per test case and variant
SHIFT = 100_003  # run r shifts every torch.manual_seed(s) in the tests to s + r * SHIFT
WORKERS = 2


def _definitions(notebook: Path) -> dict[str, str]:
    """Top-level functions, classes and answer assignments of a notebook: name -> normalised source."""
    import nbformat

    found: dict[str, str] = {}
    for _, node in top_level_nodes(nbformat.read(notebook, as_version=4), skip_ignored=True):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            found[node.name] = ast.unparse(node)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id.endswith("_answer"):
                found[node.targets[0].id] = ast.unparse(node)
    return found


def _namespace(notebook: Path) -> dict:
    """The notebook's imports, functions and classes (as reference_namespace builds them), plus its answers."""
    from hwkit.author.known import reference_namespace

    env = reference_namespace(notebook)
    for name, source in _definitions(notebook).items():
        if name.endswith("_answer"):
            env[name] = ast.literal_eval(ast.parse(source).body[0].value)
    return env


def _init_worker(autograder_dir: str) -> None:
    import torch

    torch.set_num_threads(1)
    os.chdir(autograder_dir)  # the tests load data/digits.npz


def _sweep(job: tuple[str, str, str, str, list[int], str]) -> tuple[str, str, float, list[str]]:
    """Run one test case on one notebook under every seed shift; return what failed."""
    from otter.test_files import ExceptionTestFile

    from hwkit.grade.verdict import shifted_seeds

    variant, notebook, question, case_name, shifts, autograder_zip = job
    with zipfile.ZipFile(autograder_zip) as zf:
        source = zf.read(f"tests/{question}.py").decode("utf-8")
    case = next(tc for tc in ExceptionTestFile.from_string(source).test_cases if tc.body.test_func.__name__ == case_name)
    env = _namespace(Path(notebook))
    failures, start = [], time.perf_counter()
    for shift in shifts:
        try:
            with shifted_seeds(shift):
                case.body.call_func(env)
        except Exception as e:  # a failed assertion, or an error
            failures.append(f"{variant} {case_name} shift {shift}: {type(e).__name__}: {e}")
    return variant, case_name, time.perf_counter() - start, failures


def _jobs(known, autograder_zip: Path, points: dict[str, float]) -> list[tuple[str, str, str, str, list[int], str]]:
    """(variant, notebook, question, test case, seed shifts, zip) for every run the sweep makes."""
    from otter.test_files import ExceptionTestFile

    reference = next(k for k in known if k.name == "full-credit")
    reference_defs = _definitions(reference.path)
    changed = {}  # variant -> the names whose definition differs from the reference's
    for k in known:
        if k.name.startswith("correct-"):
            defs = _definitions(k.path)
            changed[k.name] = k, {n for n in defs.keys() | reference_defs.keys() if defs.get(n) != reference_defs.get(n)}
    shifts = [run * SHIFT for run in range(SEEDS)]
    zip_path = str(autograder_zip.resolve())
    jobs = []
    with zipfile.ZipFile(autograder_zip) as zf:
        for q in points:
            for tc in ExceptionTestFile.from_string(zf.read(f"tests/{q}.py").decode("utf-8")).test_cases:
                func = tc.body.test_func
                uses = set(inspect.signature(func).parameters)  # the notebook names the case is called with
                jobs.append((reference.name, str(reference.path), q, func.__name__, shifts, zip_path))
                jobs += [(k.name, str(k.path), q, func.__name__, shifts, zip_path) for k, names in changed.values() if uses & names]
    return jobs


@pytest.mark.slow
def test_correct_answers_pass_every_test_under_every_seed(known, autograder_zip: Path, dist: Path, points):
    """Do the reference and every correct variant pass every test case under 30 different seeds?"""
    jobs = _jobs(known, autograder_zip, points)
    assert {j[0] for j in jobs} >= {"full-credit"} and len({j[0] for j in jobs}) > 15, "the corpus has too few correct variants"
    # The longest jobs (the training tests) first, so that the two workers finish together.
    jobs.sort(key=lambda j: j[3] != "test_q6a_learns")
    # Spawned workers: torch is not fork-safe once its thread pools exist. A worker that dies breaks
    # the pool (BrokenProcessPool) instead of hanging the test, as multiprocessing.Pool would.
    ctx = multiprocessing.get_context("spawn")
    failures, start = [], time.perf_counter()
    with ProcessPoolExecutor(WORKERS, mp_context=ctx, initializer=_init_worker,
                             initargs=(str((dist / "autograder").resolve()),)) as pool:
        for _, _, _, failed in pool.map(_sweep, jobs):
            failures += failed
    print(f"seed sweep: {len(jobs)} (variant, test case) pairs x {SEEDS} seeds in {time.perf_counter() - start:.0f} s")
    assert not failures, f"{len(failures)} failures over {SEEDS} seeds:\n" + "\n".join(failures[:40])


def test_sweep_covers_every_question_and_the_training_variants(known, autograder_zip: Path, points):
    """Does the sweep run every question's tests on the reference, and the training tests on the VAE and train_vae variants?"""
    jobs = _jobs(known, autograder_zip, points)
    assert {j[2] for j in jobs if j[0] == "full-credit"} == set(points)
    learners = {j[0] for j in jobs if j[3] == "test_q6a_learns"} - {"full-credit"}
    trainers = {j[0] for j in jobs if j[3] == "test_q6b_steps"} - {"full-credit"}
    assert any("vae" in name for name in learners) and any("train" in name for name in trainers), (learners, trainers)
    import torch

    from hwkit.grade.verdict import shifted_seeds

    draws = set()
    for shift in jobs[0][4][:3]:  # the shifts really change what the tests draw
        with shifted_seeds(shift):
            torch.manual_seed(0)
            draws.add(float(torch.rand(())))
    assert len(draws) == 3
