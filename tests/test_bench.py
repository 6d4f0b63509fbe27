"""The benchmark's measurements and bookkeeping, on tiny processes (no otter run, no grading)."""

from __future__ import annotations

import json
import subprocess
import sys

from hwkit.bench.compare import Run, format_runs, make_submissions, score_differences
from hwkit.bench.treesampler import TreeUsage

# Holds `mb` MB and burns `cpu` CPU-seconds, then ends.
BURN = ("import time\nbuf = bytearray({mb} * 2**20)\nfor i in range(0, len(buf), 4096): buf[i] = 1\n"
        "t = time.process_time()\nwhile time.process_time() - t < {cpu}: pass\n")
# A parent of 80 MB that starts a child of 40 MB; each burns CPU; one unit of about 120 MB.
PARENT = ("import subprocess, sys\nchild = subprocess.Popen([sys.executable, '-c', {child!r}])\n"
          + BURN.format(mb=80, cpu=0.3) + "child.wait()\n").format(child=BURN.format(mb=40, cpu=0.3))


# Each measurement runs in a fresh interpreter whose only children are the ones it starts: the test process
# may already hold children of earlier tests (a forkserver, a resource tracker), which would be units too.
MEASURE_CHILDREN = """
import json, os, resource, subprocess, sys
from hwkit.bench.treesampler import TreeSampler
def reaped():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
before = reaped()
with TreeSampler(os.getpid(), units="children", include_root=False, interval=0.02) as sampler:
    for _ in range(2):
        subprocess.run([sys.executable, "-c", sys.argv[1]], check=True)
usage = sampler.usage()
print(json.dumps([reaped() - before, usage.cpu_seconds, usage.unit_peaks_mb, usage.peak_total_mb]))
"""
MEASURE_FORKSERVER = """
import json, multiprocessing, os, sys
from hwkit.bench.treesampler import TreeSampler
if __name__ == "__main__":
    ctx = multiprocessing.get_context("forkserver")
    with TreeSampler(os.getpid(), units="forkserver", include_root=True, interval=0.02) as sampler:
        procs = [ctx.Process(target=exec, args=(sys.argv[1].format(mb=mb, cpu=0.3),)) for mb in (60, 120)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    usage = sampler.usage()
    print(json.dumps([[p.exitcode for p in procs], usage.cpu_seconds, usage.unit_peaks_mb]))
"""


def _measure(script: str, arg: str, tmp_path) -> list:
    path = tmp_path / "measure.py"
    path.write_text(script)
    done = subprocess.run([sys.executable, str(path), arg], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(done.stdout)


def test_sampler_counts_cpu_of_grandchildren_and_memory_per_unit(tmp_path):
    """Does the sampler see the CPU of a child and grandchild (as getrusage does) and each unit's peak PSS?"""
    reaped, cpu, peaks, total = _measure(MEASURE_CHILDREN, PARENT, tmp_path)
    assert reaped > 1.1  # 2 units x (0.3 + 0.3) CPU-s, plus interpreter start-up
    assert abs(cpu - reaped) < 0.15 * reaped
    assert len(peaks) == 2
    assert all(110 < peak < 200 for peak in peaks), peaks
    assert 110 < total < 200  # one unit at a time; the measuring process itself is left out


def test_sampler_finds_forkserver_children_as_units(tmp_path):
    """With units="forkserver", is each process forked by the forkserver one unit, with its own peak?"""
    exitcodes, cpu, peaks = _measure(MEASURE_FORKSERVER, BURN, tmp_path)
    assert exitcodes == [0, 0]
    assert len(peaks) == 2
    small, large = sorted(peaks)  # libraries preloaded in the forkserver add the same to both
    assert small > 55 and 50 < large - small < 75, peaks
    assert cpu > 0.5  # both burns, seen although the forkserver never reaps them for us


def test_submissions_cycle_through_the_corpus_with_distinct_names(tmp_path):
    """Are N copies made round-robin from the known notebooks, each with its own name, replacing old ones?"""
    known = tmp_path / "known"
    known.mkdir()
    for name in ("b.ipynb", "a.ipynb"):
        (known / name).write_text(name)
    dest = tmp_path / "subs"
    dest.mkdir()
    (dest / "stale.ipynb").write_text("old")
    made = make_submissions(known, 5, dest)
    assert [p.name for p in made] == ["001-a.ipynb", "002-b.ipynb", "003-a.ipynb", "004-b.ipynb", "005-a.ipynb"]
    assert sorted(p.name for p in dest.iterdir()) == [p.name for p in made]
    assert made[3].read_text() == "b.ipynb"


def _run(engine: str, scores: dict[str, dict[str, float]], wall: float = 60.0) -> Run:
    usage = TreeUsage(120.0, [300.0, 400.0, 500.0], 900.0, 10)
    return Run(engine, len(scores), wall, usage, scores, {name: "ok" for name in scores})


def test_score_differences_name_the_submission_and_question():
    """Are equal scores reported as no difference, and a different or missing score named?"""
    a = _run("otter", {"1.ipynb": {"q1c": 2.0, "q3b": 0.5}, "2.ipynb": {"q1c": 2.0}})
    questions = ["q1c", "q2b", "q3b"]
    assert score_differences(a, _run("fork", {"1.ipynb": {"q1c": 2.0, "q3b": 0.5, "q2b": 0.0}, "2.ipynb": {"q1c": 2}}),
                             questions) == []
    diffs = score_differences(a, _run("fork", {"1.ipynb": {"q1c": 2.0, "q3b": 2.0}}), questions)
    assert diffs == ["1.ipynb: q3b 0.5 vs 2", "2.ipynb: graded by only one engine, q1c 2 vs 0"]


def test_table_shows_rates_cpu_and_memory_per_submission():
    """Does the table give submissions per minute, CPU-s per submission and the median and max peak?"""
    table = format_runs([_run("serial otter run", {f"{i}": {} for i in range(4)}, wall=120.0)])
    header, _, row = table.splitlines()
    assert header.split()[:4] == ["engine", "subs", "wall", "s"]
    assert row.split()[-8:] == ["4", "120.0", "2.0", "120.0", "30.00", "400", "500", "900"]
