"""`hwkit gradescope`: what the autograder zip runs on Gradescope, and its local simulation.

On Gradescope, ``run_autograder`` calls ``run(root=/autograder)``: it grades ``submission/`` through
``grading.read_submission`` and ``grading.grade_notebook`` (the two halves of ``grade_one``, by which
``make grade`` grades each file), against the hidden tests in ``source/``
(with Gradescope's budgets, see ``grading.Budgets``), and always writes a ``results/results.json``
that validates against Gradescope's published format, with a message for the student when
something went wrong.
``check`` lays out a temporary root the same way and runs the zip's own ``run_autograder``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from hwkit.errors import UsageError
from hwkit.grade.grading import Budgets, RunResult, assignment_name, grade_notebook, open_engine, read_submission
from hwkit.grade.results import failure_results, validate_results


def grade(root: Path) -> dict:
    """Grade ``root/submission`` against ``root/source``; return results that always validate."""
    start = time.monotonic()
    source = root / "source"
    os.chmod(source, 0o700)  # hidden tests: readable by the grader only, never by the student's process
    confinement = "not run"
    try:
        budgets = Budgets.for_gradescope(os.environ)
        # The upload is read first: one with no gradable notebook gets its answer without a grading server.
        result = read_submission(root / "submission", assignment_name(source))
        if not isinstance(result, RunResult):
            with open_engine("fork", source, budgets, insecure=os.environ.get("HWKIT_INSECURE") == "1") as engine:
                confinement = engine.confinement
                result = grade_notebook(result, engine)
        results = result.results or failure_results(f"Your submission could not be graded: {result.status}.")
    except UsageError as e:  # no way to confine the notebook here: refuse, and tell the instructor why
        confinement = "none (refused)"
        results = failure_results("The autograder cannot run submissions safely on this machine; "
                                  "your instructor has been shown the details. Please contact them.")
        print(f"hwkit: refused: {e}", file=sys.stderr)
    except Exception as e:  # the grader's own fault: say so rather than fail without a result
        results = failure_results(f"The autograder failed on this submission ({type(e).__name__}); "
                                  "your instructor has been shown the details. Please contact them.")
        print(f"internal error: {type(e).__name__}: {e}", file=sys.stderr)
    results["execution_time"] = round(time.monotonic() - start, 1)
    results["extra_data"] = {**results.get("extra_data", {}), "confinement": confinement}
    try:
        validate_results(results)
    except Exception as e:
        print(f"results did not validate: {e}", file=sys.stderr)
        results = failure_results("The autograder produced an invalid result; please contact your instructor.")
    return results


def summary(results: dict) -> str:
    """The run's standard output: per-question scores and the overall message."""
    lines = [results.get("output", ""), ""]
    for t in results.get("tests", []):
        if "max_score" in t:
            lines.append(f"{t['name']:<24} {t['score']:g} / {t['max_score']:g}")
    lines.append(f"{'total':<24} {results.get('score', 0):g}")
    return "\n".join(lines) + "\n"


def run(root: Path) -> int:
    """Entry point of run_autograder: grade, write results/results.json, print the summary."""
    results = grade(root)
    out = root / "results"
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=2))
    tmp.replace(out / "results.json")
    sys.stdout.write(summary(results))
    return 0


def check(submission: Path, *, autograder_zip: Path, out: Path) -> dict:
    """Run the zip's run_autograder on one submission in a temporary root laid out like /autograder."""
    if not submission.is_file():
        raise UsageError(f"submission not found: {submission}")
    if not autograder_zip.is_file():
        raise UsageError(f"autograder zip not found: {autograder_zip} (run `make assign` first)")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hwkit-gs-") as tmp:
        root = Path(tmp)
        for part in ("source", "submission", "results"):
            (root / part).mkdir()
        with zipfile.ZipFile(autograder_zip) as zf:
            zf.extractall(root / "source")
        if submission.suffix.lower() == ".zip":  # Gradescope unpacks an uploaded zip
            try:
                with zipfile.ZipFile(submission) as zf:
                    zf.extractall(root / "submission")
            except zipfile.BadZipFile:
                shutil.copy2(submission, root / "submission")
        else:
            shutil.copy2(submission, root / "submission")
        env = dict(os.environ, AUTOGRADER_ROOT=str(root), HWKIT_PYTHON=sys.executable)
        proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], cwd=root, env=env,
                              capture_output=True, text=True)
        (out / "stdout").write_text(proc.stdout + proc.stderr)
        results_path = root / "results" / "results.json"
        if not results_path.is_file():
            raise UsageError(f"run_autograder wrote no results.json (exit {proc.returncode}); see {out / 'stdout'}")
        results = json.loads(results_path.read_text())
        validate_results(results)
        shutil.copy2(results_path, out / "results.json")
    return results
