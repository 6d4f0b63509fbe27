"""Grade one notebook with ``otter run`` in its own folder and process group, with a timeout."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hwkit.grade.cleanup import ONE_THREAD, kill_tree


@dataclass(frozen=True)
class CaseResult:
    """One test case of one submission, as the grader decided it."""

    question: str  # "q1b"
    name: str  # "test_q1b_values" (our engine) or "q1b - 2" (otter run names its cases so)
    points: float  # what the case is worth
    hidden: bool
    passed: bool
    message: str  # one line: what the student reads when it failed ("" when it passed)


@dataclass
class RunResult:
    status: str  # "ok", "timeout after N s", "kernel died", ...
    scores: dict[str, float] = field(default_factory=dict)  # question -> points
    results: dict | None = None  # Gradescope results.json
    seconds: float = 0.0
    log: str = ""
    cases: list[CaseResult] = field(default_factory=list)  # every graded test case, in grading order

    @property
    def messages(self) -> dict[str, list[str]]:
        """Per question, one line per failed case: its name, public or hidden, and its message."""
        found: dict[str, list[str]] = {}
        for c in self.cases:
            if not c.passed:
                found.setdefault(c.question, []).append(f"{c.name} ({'hidden' if c.hidden else 'public'}): {c.message}")
        return found


def scores_from_results(results: dict) -> dict[str, float]:
    """Per-question points from an otter ``results.json`` (its ``tests`` named by question)."""
    return {t["name"]: float(t["score"]) for t in results.get("tests", []) if "score" in t}


_OTTER_BLOCK = re.compile(r"^[ \t]*(\S.*?) result:[ \t]*$", re.M)
_OTTER_ERROR = re.compile(r"Error at line \d+ in test [^\n]*:\n[^\n]*\n[ \t]*([^\n]+)")


def cases_from_otter(results: dict) -> list[CaseResult]:
    """The failed cases in otter's results.json (otter's own text, read once, where it is made).

    otter writes one entry per question (``"q1b"``) whose ``output`` has a block per case
    (``"q1b - 2 result:"``), a failed one with ``"Error at line N in test q1b:"``, the failing line of the
    test and the exception. Its ``"Public Tests"`` entry repeats cases and is skipped.
    """
    found = []
    for t in results.get("tests", []):
        if "score" not in t or t.get("name") == "Public Tests":
            continue
        output = str(t.get("output", ""))
        heads = list(_OTTER_BLOCK.finditer(output))
        for head, nxt in zip(heads, heads[1:] + [None]):
            block = output[head.end(): nxt.start() if nxt else len(output)]
            if "Test case failed" not in block and "Error at line" not in block:
                continue
            error = _OTTER_ERROR.search(block)
            found.append(CaseResult(str(t["name"]), head.group(1).strip(), 0.0, False, False,
                                    error.group(1).strip() if error else "failed"))
    return found


def run_otter(notebook: bytes, *, autograder_zip: Path, name: str, timeout: float) -> RunResult:
    """Run ``otter run`` on ``notebook``, saved as ``<name>.ipynb`` (``name``: the assignment's), in a fresh
    temporary folder; never raises for bad code."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hwkit-") as tmp:
        work = Path(tmp)
        (work / "submission").mkdir()
        (work / "out").mkdir()
        # Under the assignment's own name, as the student saved it (otter's config names it).
        nb_path = work / "submission" / f"{name}.ipynb"
        nb_path.write_bytes(notebook)
        log_path = work / "otter.log"
        cmd = [sys.executable, "-m", "otter", "run", "-a", str(autograder_zip.resolve()), "-o", str(work / "out"), str(nb_path)]
        # One thread per submission: parallel submissions already fill the cores, and OpenMP
        # threads competing for them make each run several times slower.
        env = dict(os.environ, MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", **ONE_THREAD)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=env)
            try:
                proc.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            kill_tree(proc.pid)
            proc.wait()
        seconds = time.monotonic() - start
        text = log_path.read_text(errors="replace")
        results_path = work / "out" / "results.json"
        if timed_out:
            return RunResult(f"timeout after {timeout:g} s", seconds=seconds, log=text)
        if not results_path.is_file():
            return RunResult("kernel died" if "Kernel died" in text or "DeadKernel" in text else "grading failed",
                             seconds=seconds, log=text)
        results = json.loads(results_path.read_text())
        return RunResult("ok", scores_from_results(results), results, seconds, text, cases_from_otter(results))
