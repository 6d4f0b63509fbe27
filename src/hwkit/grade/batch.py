"""`hwkit grade`: grade many submissions in parallel into a gradebook, feedback files and a table."""

from __future__ import annotations

import json
import re
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

from hwkit.errors import UsageError
from hwkit.report.gradebook import Gradebook
from hwkit.author.questions import question_points
from hwkit.grade.grading import ENGINES, Budgets, assignment_name, grade_one, open_engine
from hwkit.grade.runner import RunResult
from hwkit.grade.shards import Shard, check_out, mark, select
from hwkit.grade.submissions import find_submissions
from hwkit.text import display_name, one_line, short_hash

CASES = "cases.json"  # in each feedback folder: every graded case, as runner.CaseResult records


def safe_name(name: str) -> str:
    """The submission's feedback folder: its name made safe, plus a hash of the exact name (names differing
    only in characters replaced here, ``alice smith`` and ``alice_smith``, get different folders)."""
    slug = re.sub(r"[^\w.-]+", "_", display_name(name))[:100] or "submission"
    return f"{slug}-{short_hash(name)}"


def feedback_text(name: str, result: RunResult, points: dict[str, float]) -> str:
    """What a student (or TA) reads: status, then each question's score and what went wrong.

    ``points``: the auto-graded questions' points, in notebook order."""
    lines = [f"Submission: {display_name(name)}", f"Status: {one_line(result.status, 500)}", ""]
    for q in points:
        lines.append(f"{q}: {result.scores.get(q, 0.0):g} / {points[q]:g}")
        lines.extend(f"    - {one_line(m)}" for m in result.messages.get(q, []))
    total = sum(result.scores.get(q, 0.0) for q in points)
    lines += ["", f"Total: {total:g} / {sum(points.values()):g}"]
    return "\n".join(lines) + "\n"


def _write_feedback(folder: Path, name: str, result: RunResult, points: dict[str, float]) -> None:
    """feedback.txt, results.json and cases.json (the typed case records the report counts); a failure to write them is added to the status, never raised."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if result.results is not None:
            (folder / "results.json").write_text(json.dumps(result.results, indent=2, ensure_ascii=True), encoding="utf-8")
        (folder / CASES).write_text(json.dumps([asdict(c) for c in result.cases], indent=1, ensure_ascii=True),
                                    encoding="utf-8")
        (folder / "feedback.txt").write_text(feedback_text(name, result, points), encoding="utf-8", errors="replace")
    except BaseException as e:  # noqa: BLE001
        result.status = one_line(f"{result.status}; feedback not written: {type(e).__name__}: {e}", 500)


def grade_submissions(paths: list[Path], *, out: Path, autograder_zip: Path, jobs: int, timeout: float,
                      force: bool = False, engine: str = "fork", memory_mb: int = 2048, insecure: bool = False,
                      progress=sys.stderr, info: dict | None = None, shard: Shard | None = None) -> list[dict[str, str]]:
    """Grade every submission under ``paths`` (only shard ``shard``'s, if given) into ``out``; return the
    gradebook rows in name order.

    ``info``, if given, receives ``confinement``: the mode submissions ran in (see ``confine``)."""
    info = {} if info is None else info
    if not autograder_zip.is_file():
        raise UsageError(f"autograder zip not found: {autograder_zip} (run `make assign` first)")
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if timeout <= 0:
        raise UsageError(f"--timeout must be positive, got {timeout:g}")
    budgets = Budgets(submission=timeout, memory_mb=memory_mb)
    if engine == "docker":  # otter grade takes the whole batch, one container per submission
        from hwkit.platforms.docker import grade_with_docker

        if shard:
            raise UsageError("--shard and the docker engine do not go together: otter grade takes the whole folder")
        info["confinement"] = "docker"
        otter_zip = autograder_zip.parent / "autograder" / "otter-autograder.zip"
        rows = grade_with_docker(paths, out=out, otter_zip=otter_zip, jobs=jobs, timeout=timeout)
        mark(out, None, paths, None)  # a whole class's folder now
        return rows
    submissions = select(find_submissions(paths), shard)
    check_out(out, shard, force=force)
    try:
        points = question_points(autograder_zip)
    except (zipfile.BadZipFile, KeyError, AttributeError, OSError, ValueError, TypeError):
        raise UsageError(f"not a readable autograder zip: {autograder_zip}") from None
    assignment = assignment_name(autograder_zip)
    possible = sum(points.values())
    engine_ = open_engine(engine, autograder_zip, budgets, insecure=insecure)  # may refuse: before any output
    info["confinement"] = engine_.confinement
    start, done = time.monotonic(), 0
    try:
        out.mkdir(parents=True, exist_ok=True)
        mark(out, shard, paths, info["confinement"])
        book = Gradebook(out / "gradebook.csv", list(points), force=force)
        todo = [(n, p) for n, p in submissions if n not in book.rows]
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(grade_one, p, engine_, assignment): n for n, p in todo}
            for future in as_completed(futures):
                name = futures[future]
                result = future.result()  # never raises: grade_one turns every failure into a status
                _write_feedback(out / "feedback" / safe_name(name), name, result, points)
                row = book.add(name, result.scores, possible, one_line(result.status, 500))
                done += 1
                if progress:
                    _progress(progress, done, len(todo), time.monotonic() - start, name, row)
        book.sort([n for n, _ in submissions])
    finally:
        engine_.close()
    return [book.rows[n] for n, _ in submissions]


def _progress(stream, done: int, total: int, elapsed: float, name: str, row: dict[str, str]) -> None:
    width = 24
    filled = int(width * done / total)
    eta = elapsed / done * (total - done)
    stream.write(f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}  ETA {eta:4.0f} s  "
                 f"{display_name(name)}: {row['total']}/{row['possible']} {one_line(row['status'], 200)}\n")
    stream.flush()


def main(*, paths: list[Path], out: Path, autograder: Path, jobs: int, timeout: float, force: bool, memory_mb: int,
         engine: str, insecure: bool, shard: str | None) -> None:
    """`hwkit grade`: the written answers' score sheet checked first, then the gradebook, feedback, the TA's pages
    of written answers and the report, and what was written where, printed."""
    from hwkit.report.class_report import print_outcome, write_report
    from hwkit.grade.shards import parse_shard
    from hwkit.written import ta as written_ta

    cut = parse_shard(shard) if shard is not None else None
    if cut and engine == "docker":
        raise UsageError("--shard does not work with the docker engine: otter grade takes the whole folder")
    check_out(out, cut, force=force)
    written = written_ta.prepare(paths, out, answer_key=autograder.parent / "solutions" / "README.md",
                                 autograder_zip=autograder, jobs=jobs, shard=cut)
    info: dict = {}
    rows = grade_submissions(paths, out=out, autograder_zip=autograder, jobs=jobs, timeout=timeout, force=force,
                             engine=engine, memory_mb=memory_mb, insecure=insecure, info=info, shard=cut)
    rows, written_points = written_ta.finish(written, rows)
    auto = question_points(autograder)
    points = {**auto, **written_points}
    report = write_report(rows, out, points, info.get("confinement"))
    print_outcome(rows, points, list(auto), info.get("confinement"), out, report)
    if cut:
        print(f"shard {cut}: join the {cut.count} shards' folders with `python -m hwkit merge -o OUT FOLDER...`")
