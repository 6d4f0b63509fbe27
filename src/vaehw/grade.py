"""`vaehw grade`: grade many submissions in parallel into a gradebook, feedback files and a table."""

from __future__ import annotations

import json
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from .errors import UsageError
from .gradebook import Gradebook
from .questions import QUESTIONS, question_points
from .runner import RunResult, run_otter
from .submissions import Ungradable, find_submissions, notebook_bytes


def _safe_name(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name)[:120] or "submission"


def _without_test_source(output: str) -> str:
    """Drop the test source line that otter quotes under "Error at line N in test qX:"."""
    return re.sub(r"(Error at line \d+ in test \w+):\n[^\n]*\n", r"\1:\n", output)


def feedback_text(name: str, result: RunResult, points: dict[str, float]) -> str:
    """What a student (or TA) reads: status, then each question's score and messages."""
    lines = [f"Submission: {name}", f"Status: {result.status}", ""]
    outputs = {t["name"]: t.get("output", "") for t in (result.results or {}).get("tests", [])}
    for q in QUESTIONS:
        lines.append(f"{q}: {result.scores.get(q, 0.0):g} / {points[q]:g}")
        if outputs.get(q) and result.scores.get(q, 0.0) < points[q]:
            lines.extend("    " + l for l in _without_test_source(outputs[q]).strip().splitlines())
    total = sum(result.scores.get(q, 0.0) for q in QUESTIONS)
    lines += ["", f"Total: {total:g} / {sum(points.values()):g}"]
    return "\n".join(lines) + "\n"


def _grade_one(name: str, path: Path, autograder_zip: Path, timeout: float) -> RunResult:
    try:
        notebook = notebook_bytes(path)
    except Ungradable as e:
        return RunResult(str(e))
    return run_otter(notebook, autograder_zip=autograder_zip, timeout=timeout)


def grade_submissions(paths: list[Path], *, out: Path, autograder_zip: Path, jobs: int, timeout: float,
                      force: bool = False, progress=sys.stderr) -> list[dict[str, str]]:
    """Grade every submission under ``paths`` into ``out``; return the gradebook rows in name order."""
    if not autograder_zip.is_file():
        raise UsageError(f"autograder zip not found: {autograder_zip} (run `make assign` first)")
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    submissions = find_submissions(paths)
    points = question_points(autograder_zip)
    possible = sum(points.values())
    out.mkdir(parents=True, exist_ok=True)
    book = Gradebook(out / "gradebook.csv", force=force)
    todo = [(n, p) for n, p in submissions if n not in book.rows]
    start, done = time.monotonic(), 0
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_grade_one, n, p, autograder_zip, timeout): n for n, p in todo}
        for future in as_completed(futures):
            name = futures[future]
            result = future.result()
            folder = out / "feedback" / _safe_name(name)
            folder.mkdir(parents=True, exist_ok=True)
            if result.results is not None:
                (folder / "results.json").write_text(json.dumps(result.results, indent=2))
            (folder / "feedback.txt").write_text(feedback_text(name, result, points))
            row = book.add(name, result.scores, possible, result.status)
            done += 1
            if progress:
                elapsed = time.monotonic() - start
                eta = elapsed / done * (len(todo) - done)
                progress.write(f"[{done}/{len(todo)}] {name}: {row['total']}/{row['possible']} {row['status']}"
                               f"  (elapsed {elapsed:.0f} s, ETA {eta:.0f} s)\n")
                progress.flush()
    return [book.rows[n] for n, _ in submissions]
