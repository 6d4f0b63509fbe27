"""Grade one notebook with ``otter run`` in its own folder and process group, with a timeout."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass
class RunResult:
    status: str  # "ok", "timeout after N s", "kernel died", ...
    scores: dict[str, float] = field(default_factory=dict)  # question -> points
    results: dict | None = None  # Gradescope results.json
    seconds: float = 0.0
    log: str = ""
    messages: dict[str, list[str]] = field(default_factory=dict)  # question -> failed-test messages


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the process group and every descendant (kernels start their own session)."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for child in family:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()


def scores_from_results(results: dict) -> dict[str, float]:
    """Per-question points from an otter ``results.json`` (its ``tests`` named by question)."""
    return {t["name"]: float(t["score"]) for t in results.get("tests", []) if "score" in t}


def messages_from_otter(results: dict) -> dict[str, list[str]]:
    """Failed-test messages from otter's per-question output, without the quoted test source line."""
    messages = {}
    for t in results.get("tests", []):
        if "score" in t and t["score"] < t.get("max_score", 0):
            found = re.findall(r"in test (\S+):\n[^\n]*\n(\w+(?:Error|Exception)?: [^\n]*)", t.get("output", ""))
            messages[t["name"]] = [f"{name}: {message}" for name, message in found]
    return messages


def run_otter(notebook: bytes, *, autograder_zip: Path, timeout: float) -> RunResult:
    """Run ``otter run`` on ``notebook`` in a fresh temporary folder; never raises for bad code."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vaehw-") as tmp:
        work = Path(tmp)
        (work / "submission").mkdir()
        (work / "out").mkdir()
        nb_path = work / "submission" / "vae_hw.ipynb"
        nb_path.write_bytes(notebook)
        log_path = work / "otter.log"
        cmd = [sys.executable, "-m", "otter", "run", "-a", str(autograder_zip.resolve()), "-o", str(work / "out"), str(nb_path)]
        # One thread per submission: parallel submissions already fill the cores, and OpenMP
        # threads competing for them make each run several times slower.
        env = dict(os.environ, MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=env)
            try:
                proc.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            _kill_tree(proc)
        seconds = time.monotonic() - start
        text = log_path.read_text(errors="replace")
        results_path = work / "out" / "results.json"
        if timed_out:
            return RunResult(f"timeout after {timeout:g} s", seconds=seconds, log=text)
        if not results_path.is_file():
            return RunResult("kernel died" if "Kernel died" in text or "DeadKernel" in text else "grading failed",
                             seconds=seconds, log=text)
        results = json.loads(results_path.read_text())
        return RunResult("ok", scores_from_results(results), results, seconds, text, messages_from_otter(results))
