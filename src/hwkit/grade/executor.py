"""Grade one notebook in a process forked from a pre-imported server; recover from dead cells.

The server (multiprocessing's forkserver, with torch, IPython and otter preloaded) forks one
process per submission, which runs ``sandbox.run_submission`` in a fresh folder holding only the
notebook and the data. This process only waits, enforces the wall-clock budget, and reads the
JSON events the submission wrote. When a cell kills its process or hangs past the budget, the
submission is run again without that cell, for the questions not yet graded, so that a crash
after the answers costs nothing and a crash in the middle costs only what depends on it.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import multiprocessing
import multiprocessing.forkserver
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

from hwkit.grade import cleanup
from hwkit.sandbox import confine
from hwkit.author.build import ASSIGNMENT_JSON, SECRET
from hwkit.errors import UsageError
from hwkit.author.questions import auto_points, load_questions, written_points
from hwkit.grade.results import gradescope_results, written_answers_entry
from hwkit.grade.runner import CaseResult, RunResult
from hwkit.text import one_line

MAX_RESTARTS = 3
PR_SET_DUMPABLE = 4
_SERVER_LOCK = threading.Lock()
MAX_REPORT = 16 * 2**20  # bytes: the verdict process's reports are small; a larger one ends the run
# User ids with no account: one per run, so runs cannot touch each other. The kernel counts processes per
# user id across containers on one host (the process cap), so each grader starts at a random place in a
# wide range: graders in other containers, which cannot see our locks, are unlikely to pick the same ids.
FIRST_UID, UID_RANGE = 200_000, 1_000_000
UID_LOCKS = Path("/run/hwkit-uids")  # root-only: which ids running graders hold


def _context():
    for name, value in cleanup.ONE_THREAD.items():  # inherited by the server: one thread per submission
        os.environ.setdefault(name, value)
    ctx = multiprocessing.get_context("forkserver")
    # multiprocessing has no public way to ask which modules a running forkserver preloaded, or to stop
    # it: _forkserver_pid, _preload_modules and _stop() are private (tests/test_private_apis.py fails
    # if they change).
    server = multiprocessing.forkserver._forkserver
    if server._forkserver_pid is not None and "hwkit.sandbox.preload" not in (server._preload_modules or []):
        server._stop()  # a server someone else started has neither our preloads nor our environment
    ctx.set_forkserver_preload(["hwkit.sandbox.preload", "otter.test_files"])
    # The server starts with a bare environment: a submission forked from it can read the environment
    # its process was started with (/proc/self/environ), whatever it is given afterwards.
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update({k: saved[k] for k in SERVER_ENV if k in saved})
        multiprocessing.forkserver.ensure_running()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return ctx


SERVER_ENV = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TZ", *cleanup.ONE_THREAD)


class Executor:
    """Grades notebooks against the tests of one autograder zip."""

    seed: int | None = None
    name: str = "submission"  # the assignment's: the notebook is written as <name>.ipynb, as the student saved it
    grader_only: frozenset[str] = frozenset()  # files/ the autograder keeps from the student's folder
    secret: bytes = b""  # shifts the hidden tests' seeds per submission (see verdict.submission_seed)

    def __init__(self, autograder_zip: Path, *, timeout: float = 180.0, cell_timeout: float = 60.0,
                 question_timeout: float = 60.0, memory_mb: int = 2048, minimal_root: bool = True,
                 insecure: bool = False, verdict_memory_mb: int = 1024):
        self.timeout, self.cell_timeout, self.question_timeout, self.memory_mb = timeout, cell_timeout, question_timeout, memory_mb
        self.verdict_memory_mb = verdict_memory_mb
        # Not dumpable: no process of a submission can read this one's memory (the hidden tests, the key)
        # through /proc/<pid>/mem or ptrace, even where it runs as the same user.
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        self._private = Path(tempfile.mkdtemp(prefix="hwkit-grader-"))
        os.chmod(self._private, 0o700)
        self.files_dir = self._private / "files"
        self.tests: dict[str, str] = {}  # question -> its test file; only the verdict process gets them
        for name, data in _autograder_files(Path(autograder_zip)):
            if name.startswith("tests/") and name.endswith(".py"):
                self.tests[Path(name).stem] = data.decode("utf-8")
            elif name.startswith("files/"):
                target = self._private / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            elif name == "otter_config.json":
                config = json.loads(data)
                self.seed, self.name = config.get("seed"), str(config.get("assignment_name") or self.name)
            elif name == ASSIGNMENT_JSON:
                self.grader_only = frozenset(json.loads(data).get("grader_only") or ())
            elif name == SECRET:
                self.secret = data
        self.files_dir.mkdir(exist_ok=True)
        questions = load_questions(autograder_zip)
        self.points = auto_points(questions)  # the auto-graded questions, in notebook order
        self.written = list(written_points(questions))
        self._ctx = _context()
        self._uid_lock, self._uid_counter = threading.Lock(), secrets.randbelow(UID_RANGE)
        self._expose = confine.python_paths()
        self.mode, self.mode_reason = confine.choose_mode(self._ctx, str(self._private / "mnt"), minimal_root)
        self.isolated_users = os.geteuid() == 0 and self.mode != "none"  # as on Gradescope: a user id per run
        if self.mode == "none" and not insecure:
            self.close()
            raise UsageError(f"cannot confine submissions here: {self.mode_reason}. A submission would run with "
                             "this user's rights: it could read and change every file this user can (hidden "
                             "tests, gradebook), use the network and signal or trace the grader. Pass --insecure "
                             "to grade anyway")
        if self.mode != "namespaces":
            print(f"hwkit: warning: submissions run with reduced isolation ({self.mode}): {self.mode_reason}",
                  file=sys.stderr)

    def _claim_uid(self) -> tuple[int, int] | None:
        """A user id no other run holds, in this or any other grading process, with its lock (root only).

        The lock (an flock on a root-only file) is held until ``_release_uid``; a crashed grader's
        locks vanish with it, so an id is never lost for good.
        """
        if not self.isolated_users:
            return None
        UID_LOCKS.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._uid_lock:
            for i in range(UID_RANGE):
                uid = FIRST_UID + (self._uid_counter + i) % UID_RANGE
                fd = os.open(UID_LOCKS / str(uid), os.O_CREAT | os.O_RDWR, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue
                self._uid_counter = (uid - FIRST_UID + 1) % UID_RANGE
                cleanup.kill_run(uid, -1)  # nothing may be left of an earlier holder
                cleanup.ipc_left(uid)
                return uid, fd
        raise RuntimeError("no free user id for a submission")

    @staticmethod
    def _release_uid(claim: tuple[int, int] | None) -> None:
        if claim is not None:
            cleanup.kill_run(claim[0], -1)
            os.close(claim[1])

    def close(self) -> None:
        try:
            cleanup.remove_tree(self._private)
        except OSError:
            pass

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def grade(self, notebook: bytes) -> RunResult:
        """Grade one notebook; never raises for anything the notebook does."""
        from hwkit.grade.verdict import submission_seed

        start = time.monotonic()
        shift = submission_seed(self.secret, notebook)
        graded: dict[str, dict] = {}
        skip: list[int] = []
        problems: list[str] = []
        for attempt in range(MAX_RESTARTS + 1):
            todo = [q for q in self.points if q not in graded]
            if not todo:
                break
            budget = self.timeout - (time.monotonic() - start)
            if budget <= 1:
                problems.append(f"timeout after {self.timeout:g} s")
                break
            events, ended, left = self._attempt(notebook, todo, skip, budget, shift)
            problems += left
            last_cell = -1
            for e in events:
                if e.get("event") == "question" and e.get("question") in todo:
                    graded[e["question"]] = e
                elif e.get("event") == "cell_timeout":
                    problems.append(f"cell {e['index']} timed out after {e['seconds']:g} s")
                elif e.get("event") == "cell":
                    last_cell = e["index"]
                elif e.get("event") == "done":
                    ended = e.get("ended", "")
            if ended:
                problems.append(ended)
            if all(q in graded for q in todo) or not ended or last_cell < 0 or last_cell in skip:
                break
            skip.append(last_cell)  # run again without the cell that killed or hung the notebook
        scores, records, per_question = {}, [], {}
        for q in (q for q in self.points if q in graded):
            e = graded[q]
            if "error" in e:
                error = one_line(e["error"], 300)
                problems.append(f"{q}: {error}")
                scores[q], per_question[q] = 0.0, error
            else:
                cases = [CaseResult(q, str(c["name"]), float(c["points"]), bool(c["hidden"]), bool(c["passed"]),
                                    "" if c["passed"] else one_line(c.get("message", ""))) for c in e["cases"]]
                records += cases
                scores[q] = float(sum(c.points for c in cases if c.passed))
        status = "ok" if not problems else one_line("; ".join(dict.fromkeys(problems)), 500)
        results = gradescope_results(records, self.points, status, per_question)
        results["tests"].append(written_answers_entry(notebook, self.written))
        return RunResult(status, scores, results, time.monotonic() - start, cases=records)

    def _start(self, process) -> None:
        """Start a process from the server; if the server died meanwhile, start a new server once."""
        try:
            process.start()
        except (ConnectionError, EOFError, OSError):
            with _SERVER_LOCK:
                try:
                    multiprocessing.forkserver._forkserver._stop()
                except OSError:
                    pass
            process.start()

    def _attempt(self, notebook: bytes, questions: list[str], skip: list[int], budget: float,
                 shift: int) -> tuple[list[dict], str, list[str]]:
        """One run of the submission: the verdict process's reports, how the run ended if it did not
        finish, and what had to be cleaned up after it."""
        deadline = time.monotonic() + budget
        work = tempfile.mkdtemp(prefix="hwkit-sub-")
        claim = None
        try:
            (Path(work) / f"{self.name}.ipynb").write_bytes(notebook)
            shutil.copytree(self.files_dir, work, dirs_exist_ok=True, ignore=lambda folder, names: [
                n for n in names if (Path(folder) / n).relative_to(self.files_dir).as_posix() in self.grader_only])
            claim = self._claim_uid()
            uid = claim[0] if claim else None
            if uid is not None:
                for path in [Path(work), *Path(work).rglob("*")]:
                    os.chown(path, uid, uid)
            os.chmod(work, 0o700)
            return self._run(work, uid, questions, skip, budget, deadline, shift)
        finally:
            try:
                cleanup.remove_tree(work)  # before the id is released: its next holder finds nothing of this run
            finally:
                self._release_uid(claim)

    def _run(self, work: str, uid: int | None, questions: list[str], skip: list[int], budget: float,
             deadline: float, shift: int) -> tuple[list[dict], str, list[str]]:
        student_end, verdict_end = self._ctx.Pipe(duplex=True)
        report_in, report_out = self._ctx.Pipe(duplex=False)
        student = self._ctx.Process(target=_entry, kwargs=dict(conn=student_end, uid=uid, expose=self._expose,
            staging=str(self._private / "mnt"), workdir=work, notebook=f"{self.name}.ipynb", skip_cells=skip,
            seed=self.seed, mode=self.mode,
            cell_timeout=min(self.cell_timeout, budget), question_timeout=self.question_timeout, memory_mb=self.memory_mb))
        verdict = self._ctx.Process(target=_verdict_entry, kwargs=dict(student=verdict_end, report=report_out,
            tests=self.tests, questions=questions, question_timeout=self.question_timeout,
            files=str(self.files_dir), memory_mb=self.verdict_memory_mb, seed_shift=shift))
        events, ended = [], "kernel died"
        try:
            self._start(student)
            student_end.close()  # from here on, only the student's process and the verdict process hold the pipe
            self._start(verdict)
            verdict_end.close()
            report_out.close()
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not report_in.poll(left):
                    ended = f"timeout after {self.timeout:g} s"
                    break
                event = json.loads(report_in.recv_bytes(MAX_REPORT))
                events.append(event)
                if event["event"] in ("done", "lost"):
                    ended = "" if event["event"] == "done" else f"grader error: {one_line(event.get('reason', ''), 100)}"
                    break
        except (EOFError, OSError, ValueError):
            ended = "grader error: the verdict process ended"
        finally:
            left_behind = cleanup.kill_run(uid, student.pid) if student.pid else []
            for p in (student, verdict):
                if p.pid:
                    p.kill()
                    p.join()
            for conn in (student_end, verdict_end, report_out, report_in):
                conn.close()
        files = cleanup.files_left(uid, work) + cleanup.ipc_left(uid)
        cleanup.remove_files(files)
        if not any(e.get("event") == "cell" for e in events) and not ended.startswith("timeout"):
            ended = "grader error: the notebook could not be started"
        # Only the verdict process's own reports count; an "isolation" event is the student's word and ignored.
        events = [e for e in events if e.get("event") != "isolation"]
        return events, ended, [f"left behind and removed: {', '.join(left_behind + files)[:200]}"] if left_behind or files else []


def _autograder_files(source: Path):
    """(name, bytes) of every file of an autograder, given as its zip or as its unpacked folder."""
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            if path.is_file():
                yield path.relative_to(source).as_posix(), path.read_bytes()
        return
    with zipfile.ZipFile(source) as zf:
        for name in zf.namelist():
            if not name.endswith("/"):
                yield name, zf.read(name)


def _entry(**kwargs) -> None:
    # One OpenMP thread, set before torch is first imported here (if the server did not preload it):
    # a question is graded in a process forked from this one, and a fork taken while an OpenMP
    # worker thread exists can leave the forked process waiting on that thread forever.
    os.environ.update(cleanup.ONE_THREAD)
    from hwkit.sandbox.run import run_submission

    run_submission(**kwargs)


def _verdict_entry(*, memory_mb: int, **kwargs) -> None:
    os.environ.update(cleanup.ONE_THREAD)
    import psutil

    from hwkit.sandbox.lockdown import set_rlimits
    from hwkit.grade.verdict import serve

    # Expected values are computed from shapes the student's answers chose: cap what that may cost.
    set_rlimits(psutil.Process().memory_info().vms + memory_mb * 2**20)
    serve(**kwargs)
