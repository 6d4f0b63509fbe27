"""`hwkit bench`: grade N submissions with a serial `otter run` loop, then with the fork engine, and compare.

Both runs grade the same N copies of the known submissions (``dist/known/*.ipynb``, cycled). The
baseline is what a TA would type: ``python -m otter run`` once per submission, one after another
(with one BLAS thread, as the grader's own runs). The contender is ``grade_submissions(engine="fork")``
with ``jobs`` submissions at once. CPU and memory of each run are sampled over its whole process
tree (see ``treesampler``).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hwkit.grade.cleanup import ONE_THREAD, kill_tree
from hwkit.errors import UsageError
from hwkit.author.build import find_autograder
from hwkit.grade.batch import grade_submissions
from hwkit.grade.grading import assignment_name
from hwkit.author.questions import question_points
from hwkit.grade.runner import scores_from_results
from hwkit.bench.treesampler import TreeSampler, TreeUsage

# One BLAS/OpenMP thread, as the grader runs every submission: with torch's default (a thread per
# core) a run slows down badly whenever another process is busy, and the baseline would measure
# the machine's load rather than otter run.
OTTER_ENV = {**ONE_THREAD, "MPLBACKEND": "Agg"}
OTTER_TIMEOUT = 900.0  # seconds per `otter run`: only so that a broken build cannot hang the bench
FORK_TIMEOUT = 180.0  # the grader's default budget per submission


@dataclass
class Run:
    """One engine's run over all benchmark submissions."""

    engine: str
    submissions: int
    wall: float  # seconds
    usage: TreeUsage
    scores: dict[str, dict[str, float]]  # submission file name -> question -> points
    statuses: dict[str, str]  # submission file name -> "ok" or what went wrong


def make_submissions(known: Path, n: int, dest: Path) -> list[Path]:
    """Copy ``known/*.ipynb`` round-robin into ``dest`` as ``n`` files with distinct names."""
    sources = sorted(known.glob("*.ipynb"))
    if not sources:
        raise UsageError(f"no known submissions in {known} (run `make assign`)")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    made = []
    for i in range(n):
        source = sources[i % len(sources)]
        target = dest / f"{i + 1:03d}-{source.name}"
        shutil.copyfile(source, target)
        made.append(target)
    return made


def _warm_up() -> None:
    """Import torch and otter once, untimed, so that neither run pays for a cold file cache."""
    subprocess.run([sys.executable, "-c", "import torch, otter, nbconvert, ipykernel"], check=True)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_otter_loop(submissions: list[Path], autograder_zip: Path, out: Path) -> tuple[Run, float]:
    """Grade each submission with its own `otter run`, serially; also return getrusage's CPU-s as a check."""
    shutil.rmtree(out, ignore_errors=True)
    scores: dict[str, dict[str, float]] = {}
    statuses: dict[str, str] = {}
    name = assignment_name(autograder_zip)
    cpu_before, start = _children_cpu(), time.monotonic()
    with TreeSampler(os.getpid(), units="children", include_root=False) as sampler:
        for i, nb in enumerate(submissions, 1):
            folder = out / nb.stem
            (folder / "submission").mkdir(parents=True)
            # Under the assignment's own name: otter run grades a notebook saved under another name with
            # the student's functions missing their imports (4 questions lost on a correct notebook).
            notebook = folder / "submission" / f"{name}.ipynb"
            shutil.copyfile(nb, notebook)
            t = time.monotonic()
            cmd = [sys.executable, "-m", "otter", "run", "-a", str(autograder_zip.resolve()), "-o", str(folder.resolve()),
                   str(notebook.resolve())]
            with open(folder / "otter.log", "wb") as log:
                proc = subprocess.Popen(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env={**os.environ, **OTTER_ENV})
                try:
                    proc.wait(OTTER_TIMEOUT)
                    statuses[nb.name] = "ok"
                except subprocess.TimeoutExpired:
                    kill_tree(proc.pid)
                    proc.wait()
                    statuses[nb.name] = f"timeout after {OTTER_TIMEOUT:g} s"
            results = folder / "results.json"
            if results.is_file():
                scores[nb.name] = scores_from_results(json.loads(results.read_text(encoding="utf-8")))
            else:
                scores[nb.name] = {}
                if statuses[nb.name] == "ok":
                    statuses[nb.name] = f"no results.json (see {folder / 'otter.log'})"
            print(f"  [{i}/{len(submissions)}] otter run {nb.name}: {time.monotonic() - t:.1f} s  {statuses[nb.name]}",
                  file=sys.stderr, flush=True)
    wall = time.monotonic() - start
    run = Run("serial otter run", len(submissions), wall, sampler.usage(), scores, statuses)
    return run, _children_cpu() - cpu_before


def run_fork(folder: Path, autograder_zip: Path, out: Path, jobs: int) -> Run:
    """Grade every submission in ``folder`` with the fork engine, ``jobs`` at once."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.monotonic()
    with TreeSampler(os.getpid(), units="forkserver", include_root=True) as sampler:
        rows = grade_submissions([folder], out=out, autograder_zip=autograder_zip, jobs=jobs, timeout=FORK_TIMEOUT,
                                 force=True, engine="fork")
    wall = time.monotonic() - start
    questions = list(question_points(autograder_zip))
    scores = {r["submission"]: {q: float(r[q]) for q in questions} for r in rows}
    statuses = {r["submission"]: r["status"] for r in rows}
    return Run(f"fork engine, {jobs} jobs", len(rows), wall, sampler.usage(), scores, statuses)


def score_differences(a: Run, b: Run, questions: list[str]) -> list[str]:
    """One line per submission whose scores of ``questions`` differ between two runs (a missing question counts 0)."""
    lines = []
    for name in sorted(set(a.scores) | set(b.scores)):
        sa, sb = a.scores.get(name, {}), b.scores.get(name, {})
        diff = [f"{q} {sa.get(q, 0.0):g} vs {sb.get(q, 0.0):g}" for q in questions
                if abs(sa.get(q, 0.0) - sb.get(q, 0.0)) > 1e-9]
        if name not in a.scores or name not in b.scores:
            diff.insert(0, "graded by only one engine")
        if diff:
            lines.append(f"{name}: {', '.join(diff)}")
    return lines


def format_runs(runs: list[Run]) -> str:
    """The comparison table: one line per run."""
    headers = ["engine", "subs", "wall s", "subs/min", "CPU-s", "CPU-s/sub", "peak MB/sub median", "max",
               "peak MB all"]
    body = []
    for r in runs:
        peaks = r.usage.unit_peaks_mb or [0.0]
        body.append([r.engine, str(r.submissions), f"{r.wall:.1f}", f"{60 * r.submissions / r.wall:.1f}",
                     f"{r.usage.cpu_seconds:.1f}", f"{r.usage.cpu_seconds / max(r.submissions, 1):.2f}",
                     f"{statistics.median(peaks):.0f}", f"{max(peaks):.0f}", f"{r.usage.peak_total_mb:.0f}"])
    widths = [max(len(row[i]) for row in [headers, *body]) for i in range(len(headers))]
    line = lambda cells: "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells))
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, body)])


def main(*, n: int, jobs: int, dist: Path, out: Path) -> int:
    """Run the benchmark and print its table; 0 if both engines gave the same scores, 1 otherwise."""
    if n < 1 or jobs < 1:
        raise UsageError(f"--n and --jobs must be at least 1, got {n} and {jobs}")
    autograder_zip = find_autograder(dist)
    folder = out / "bench-submissions"
    submissions = make_submissions(dist / "known", n, folder)
    print(f"bench: {n} submissions from {dist / 'known'}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}", file=sys.stderr)
    _warm_up()
    print("bench: serial otter run loop", file=sys.stderr)
    serial, rusage_cpu = run_otter_loop(submissions, autograder_zip, out / "bench-otter")
    print(f"bench: fork engine, {jobs} jobs", file=sys.stderr)
    fork = run_fork(folder, autograder_zip, out / "bench-fork", jobs)
    print()
    print(format_runs([serial, fork]))
    print("CPU-s: user + system time of every process of the run (sampled every 50 ms). peak MB/sub: peak PSS\n"
          "of one submission's processes (otter run + kernel; the process forked for it). peak MB all: whole run.")
    print()
    print(f"fork engine vs serial otter run: {serial.wall / fork.wall:.2f}x faster (wall time), "
          f"{serial.usage.cpu_seconds / max(fork.usage.cpu_seconds, 1e-9):.2f}x less CPU")
    print(f"CPU check: getrusage of the otter run loop says {rusage_cpu:.1f} CPU-s, the sampler "
          f"{serial.usage.cpu_seconds:.1f}")
    for run in (serial, fork):
        problems = {name: status for name, status in run.statuses.items() if status != "ok"}
        print(f"{run.engine}: " + ("every submission ok" if not problems else f"{len(problems)} not ok: "
              + "; ".join(f"{name} ({status})" for name, status in sorted(problems.items()))))
    differences = score_differences(serial, fork, list(question_points(autograder_zip)))
    if differences:
        print(f"scores DIFFER for {len(differences)} of {n} submissions:")
        print("\n".join(f"  {d}" for d in differences))
        return 1
    print(f"scores: identical under both engines for all {n} submissions")
    return 0
