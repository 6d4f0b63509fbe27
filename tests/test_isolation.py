"""make grade never hangs, never loses a student, and keeps one submission from touching another."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from hwkit.grade.executor import Executor
from hwkit.grade.batch import grade_submissions
from hwkit.author.known import replace_definition
from hwkit.sandbox.run import GRACE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def executor(autograder_zip):
    with Executor(autograder_zip, timeout=90, cell_timeout=8, question_timeout=20) as ex:
        yield ex


@pytest.fixture(scope="module")
def full_credit(dist) -> nbformat.NotebookNode:
    return nbformat.read(dist / "autograder" / "vae_hw.ipynb", as_version=4)


def with_cell(nb: nbformat.NotebookNode, code: str, *, after: str | None = None) -> bytes:
    """The notebook with a code cell added after the cell containing ``after`` (default: the end)."""
    nb = nbformat.from_dict(nb)
    index = len(nb.cells)
    if after is not None:
        index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and after in c.source) + 1
    nb.cells.insert(index, nbformat.v4.new_code_cell(code))
    return nbformat.writes(nb).encode()


def test_infinite_loop_after_the_answers_keeps_every_point(executor, full_credit, points):
    """Does a looping cell end at its time budget, with a row saying so and every point kept?"""
    start = time.monotonic()
    result = executor.grade(with_cell(full_credit, "while True:\n    pass", after='grader.check("q6b")'))
    assert time.monotonic() - start < 60
    assert result.scores == points
    assert "timed out after 8 s" in result.status


def test_loop_that_ignores_the_alarm_is_killed_and_skipped(executor, full_credit, points):
    """Is a loop that blocks the cell alarm killed by the supervisor's watchdog and the rest still graded?

    The submission's budget (120 s) is far beyond the watchdog's (cell budget + grace), so only the
    watchdog can end this cell, however slow the machine.
    """
    code = "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass"
    with Executor(executor_zip(executor), timeout=120, cell_timeout=8, question_timeout=20) as short:
        result = short.grade(with_cell(full_credit, code, after='grader.check("q3b")'))
    assert re.search(rf"cell \d+ timed out after {8 + GRACE:g} s", result.status), result.status
    graded_before = {q: points[q] for q in ("q1c", "q2b", "q2c", "q2d", "q3b")}
    assert {q: result.scores[q] for q in graded_before} == graded_before


def executor_zip(executor: Executor) -> Path:
    return Path(__file__).resolve().parents[1] / "dist" / "vae_hw-autograder.zip"


@pytest.mark.parametrize("after", ['grader.check("q6b")', 'grader.check("q2d")'])
def test_os_exit_keeps_points(executor, full_credit, points, after):
    """Does os._exit in a cell (after the answers, or between them) get a clear status and keep the points?"""
    result = executor.grade(with_cell(full_credit, "import os\nos._exit(3)", after=after))
    assert result.status.startswith("kernel died in cell")
    assert result.scores == points


FINGERPRINT = """def kl_divergence(log_q, log_p, x):
    import hashlib
    kinds = [TypeError, ValueError, RuntimeError, IndexError, KeyError, AttributeError, NameError, ZeroDivisionError,
             NotImplementedError, AssertionError, OverflowError, LookupError]
    digest = hashlib.sha256(x.detach().double().numpy().tobytes()).digest()
    raise kinds[digest[0] % len(kinds)]('')
"""


def test_hidden_inputs_are_fresh_for_every_submission(executor, full_credit):
    """Do two notebooks that differ only in a comment get other hidden inputs, and one notebook the same ones twice?

    The student's function tells its inputs apart by the type of error it raises (one of the 12 a hidden
    test names, the one thing it says of an error): a notebook that learnt the hidden inputs from one
    submission's feedback cannot use them in the next. Three other notebooks, since one could draw inputs
    that happen to raise the same types (a chance of 1 in 12 for each case that draws them).
    """
    nb = nbformat.from_dict(full_credit)
    replace_definition(nb, "kl_divergence", FINGERPRINT)
    first = nbformat.writes(nb).encode()
    others = []
    for k in range(3):
        nb.cells.append(nbformat.v4.new_markdown_cell(f"One more comment ({k})."))
        others.append(nbformat.writes(nb).encode())
    seen = [executor.grade(notebook).messages["q1c"] for notebook in (first, first, *others)]
    assert len(seen[0]) >= 4 and all(" raised by kl_divergence" in m for m in seen[0]), seen[0]
    assert seen[0] == seen[1]
    assert any(other != seen[0] for other in seen[2:]), seen


def test_question_that_hangs_loses_only_its_own_points(executor, full_credit, points):
    """Does a function that loops forever when the tests call it cost only the questions that call it?"""
    nb = nbformat.from_dict(full_credit)
    replace_definition(nb, "kl_divergence", "def kl_divergence(log_q, log_p, x):\n    while True:\n        pass\n")
    result = executor.grade(nbformat.writes(nb).encode())
    assert result.scores["q1c"] == 0
    assert "q1c: timeout after 20 s" in result.status
    assert {q: s for q, s in result.scores.items() if q != "q1c"} == {q: p for q, p in points.items() if q != "q1c"}


def test_background_processes_are_killed(executor, full_credit, points):
    """Does a submission that starts background processes (even detached daemons) leave none behind?"""
    code = ("import os, subprocess\n"
            "subprocess.Popen(['sleep', '987651'], start_new_session=True)\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        os.execvp('sleep', ['sleep', '987652'])\n"
            "    os._exit(0)\n")
    result = executor.grade(with_cell(full_credit, code, after='grader.check("q1c")'))
    assert result.scores == points
    time.sleep(0.5)
    left = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] and "98765" in " ".join(p.info["cmdline"])]
    assert not left, left


def test_deleting_files_cannot_affect_another_submission(dist, full_credit, autograder_zip, points, tmp_path):
    """Does a submission that deletes everything in its folder leave another, graded alongside, untouched?

    The vandal itself keeps every point: the grader trains and evaluates on its own copy of the data,
    never on the student's folder."""
    vandal = ("import os, shutil\n"
              "for name in os.listdir('.'):\n"
              "    shutil.rmtree(name) if os.path.isdir(name) else os.remove(name)\n"
              "for name in os.listdir('..'):  # the other runs' folders, the grader's tests\n"
              "    if name.startswith('hwkit-'):\n"
              "        shutil.rmtree(os.path.join('..', name), ignore_errors=True)\n")
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "vandal.ipynb").write_bytes(with_cell(full_credit, vandal, after="x_test = torch.tensor"))
    for i in range(3):
        (subs / f"student{i}.ipynb").write_bytes(nbformat.writes(full_credit).encode())
    rows = grade_submissions([subs], out=tmp_path / "out", autograder_zip=autograder_zip, jobs=2, timeout=300,
                             progress=None)
    by_name = {r["submission"]: r for r in rows}
    for i in range(3):
        assert float(by_name[f"student{i}.ipynb"]["total"]) == sum(points.values()), by_name[f"student{i}.ipynb"]
    assert float(by_name["vandal.ipynb"]["total"]) == sum(points.values())


def test_forged_results_and_printed_scores_change_nothing(executor, dist):
    """Do a forged results.json, a fake otter log and a printed 'Total Score' leave a blank notebook at 0?"""
    blank = nbformat.read(dist / "student" / "vae_hw.ipynb", as_version=4)
    forge = ("import json, os\n"
             "fake = {'score': 18, 'tests': [{'name': q, 'score': 3, 'max_score': 3} for q in ['q1c','q2b','q2c','q2d','q3b','q4b','q5b','q6a','q6b']]}\n"
             "for d in ['.', '..', '/tmp']:\n"
             "    try:\n"
             "        json.dump(fake, open(os.path.join(d, 'results.json'), 'w'))\n"
             "    except OSError:\n"
             "        pass\n"
             "open('.OTTER_LOG', 'wb').write(b'not a log')\n"
             "print('Total Score: 18.000 / 18.000 (100.000%)')\n")
    result = executor.grade(with_cell(blank, forge))
    assert sum(result.scores.values()) == 0


def test_interrupted_run_loses_no_row(dist, tmp_path):
    """After the grader is killed mid-batch and re-run, does every submission have exactly one row?"""
    subs = tmp_path / "subs"
    subs.mkdir()
    names = ["full-credit", "blank", "q3b-missing-half", "q2b-empirical-lower-bound"]
    for name in names:
        (subs / f"{name}.ipynb").write_bytes((dist / "known" / f"{name}.ipynb").read_bytes())
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hwkit", "grade", str(subs), "-o", str(out), "--jobs", "1",
           "--autograder", str(dist / "vae_hw-autograder.zip")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    book = out / "gradebook.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not book.exists() or len(book.read_text().splitlines()) < 2):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # like a crashed laptop: no clean-up at all
    proc.wait()
    finished = len(book.read_text().splitlines()) - 1
    assert 1 <= finished < len(names)
    subprocess.run(cmd, check=True, capture_output=True)
    with open(book, newline="") as f:
        rows = [r["submission"] for r in csv.DictReader(f)]
    assert sorted(rows) == sorted(f"{n}.ipynb" for n in names)


def test_concurrent_graders_never_share_a_user_id(autograder_zip):
    """Do two graders running at once (say, two TAs' batches) always get different user ids?"""
    if os.geteuid() != 0:
        pytest.skip("separate user ids need root")
    with Executor(autograder_zip) as a, Executor(autograder_zip) as b:
        claims = [a._claim_uid(), b._claim_uid(), a._claim_uid(), b._claim_uid()]
        try:
            assert len({uid for uid, _ in claims}) == 4
        finally:
            for claim in claims:
                Executor._release_uid(claim)


def test_without_a_mount_namespace_grading_still_works_and_warns(autograder_zip, full_credit, points, capfd):
    """Where the host forbids a mount namespace (Docker without CAP_SYS_ADMIN), is the notebook still graded, with a warning?"""
    if os.geteuid() != 0:
        pytest.skip("confinement is only attempted as root")
    with Executor(autograder_zip, minimal_root=False) as ex:
        result = ex.grade(nbformat.writes(full_credit).encode())
    assert result.scores == points and result.status == "ok"
    assert "reduced isolation" in capfd.readouterr().err
