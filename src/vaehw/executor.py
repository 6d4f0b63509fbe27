"""Grade one notebook in a process forked from a pre-imported server; recover from dead cells.

The server (multiprocessing's forkserver, with torch, IPython and otter preloaded) forks one
process per submission, which runs ``sandbox.run_submission`` in a fresh folder holding only the
notebook and the data. This process only waits, enforces the wall-clock budget, and reads the
JSON events the submission wrote. When a cell kills its process or hangs past the budget, the
submission is run again without that cell, for the questions not yet graded, so that a crash
after the answers costs nothing and a crash in the middle costs only what depends on it.
"""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import multiprocessing.forkserver
import os
import shutil
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import psutil

from .questions import QUESTIONS, question_points
from .results import gradescope_results, messages_from_cases, written_answers_entry
from .runner import RunResult

MAX_RESTARTS = 3
FIRST_UID, UID_RANGE = 61000, 2000  # user ids with no account: one per run, so runs cannot touch each other
UID_LOCKS = Path("/run/vaehw-uids")  # root-only: which ids running graders hold


def _context():
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the server: one thread per submission
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    ctx = multiprocessing.get_context("forkserver")
    server = multiprocessing.forkserver._forkserver
    if server._forkserver_pid is not None and "vaehw.sandbox" not in (server._preload_modules or []):
        server._stop()  # a server someone else started has neither our preloads nor our environment
    ctx.set_forkserver_preload(["vaehw.sandbox", "otter.test_files"])
    return ctx


class Executor:
    """Grades notebooks against the tests of one autograder zip."""

    seed: int | None = None

    def __init__(self, autograder_zip: Path, *, timeout: float = 180.0, cell_timeout: float = 60.0,
                 question_timeout: float = 60.0, memory_mb: int = 2048, minimal_root: bool = True):
        self.timeout, self.cell_timeout, self.question_timeout, self.memory_mb = timeout, cell_timeout, question_timeout, memory_mb
        self._private = Path(tempfile.mkdtemp(prefix="vaehw-grader-"))
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
                self.seed = json.loads(data).get("seed")
        self.files_dir.mkdir(exist_ok=True)
        self.points = question_points(autograder_zip)
        self._ctx = _context()
        self._uid_lock, self._uid_counter = threading.Lock(), 0
        self._warned = False
        self.isolated_users = os.geteuid() == 0  # as on Gradescope: each run gets a user id of its own
        self._expose = python_paths() if minimal_root else []

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
                _kill_uid(uid)  # nothing may be left of an earlier holder
                return uid, fd
        raise RuntimeError("no free user id for a submission")

    @staticmethod
    def _release_uid(claim: tuple[int, int] | None) -> None:
        if claim is not None:
            _kill_uid(claim[0])
            os.close(claim[1])

    def close(self) -> None:
        shutil.rmtree(self._private, ignore_errors=True)

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def grade(self, notebook: bytes) -> RunResult:
        """Grade one notebook; never raises for anything the notebook does."""
        start = time.monotonic()
        graded: dict[str, dict] = {}
        skip: list[int] = []
        problems: list[str] = []
        for attempt in range(MAX_RESTARTS + 1):
            todo = [q for q in QUESTIONS if q not in graded]
            if not todo:
                break
            budget = self.timeout - (time.monotonic() - start)
            if budget <= 1:
                problems.append(f"timeout after {self.timeout:g} s")
                break
            events, ended = self._attempt(notebook, todo, skip, budget)
            for e in events:
                if e.get("event") == "question":
                    graded[e["question"]] = e
                elif e.get("event") == "cell_timeout":
                    problems.append(f"cell {e['index']} timed out after {e['seconds']:g} s")
            if any(e.get("event") == "done" for e in events):
                break
            cells = [e["index"] for e in events if e.get("event") == "cell"]
            if not cells or cells[-1] in skip:
                problems.append(ended)
                break
            problems.append(f"{ended} in cell {cells[-1]}")
            skip.append(cells[-1])
        scores, cases, per_question = {}, {}, {}
        for q, e in graded.items():
            if "error" in e:
                problems.append(f"{q}: {e['error']}")
                scores[q], cases[q], per_question[q] = 0.0, [], e["error"]
            else:
                scores[q] = float(sum(c["points"] for c in e["cases"] if c["passed"]))
                cases[q] = e["cases"]
        status = "ok" if not problems else "; ".join(dict.fromkeys(problems))
        results = gradescope_results(cases, self.points, status, per_question)
        results["tests"].append(written_answers_entry(notebook))
        return RunResult(status, scores, results, time.monotonic() - start,
                         messages=messages_from_cases(cases))

    def _attempt(self, notebook: bytes, questions: list[str], skip: list[int], budget: float) -> tuple[list[dict], str]:
        """One run of the submission; returns the verdict process's reports and how the run ended if it did not finish."""
        deadline = time.monotonic() + budget
        with tempfile.TemporaryDirectory(prefix="vaehw-sub-") as work:
            (Path(work) / "vae_hw.ipynb").write_bytes(notebook)
            shutil.copytree(self.files_dir, work, dirs_exist_ok=True)
            claim = self._claim_uid()
            uid = claim[0] if claim else None
            if uid is not None:
                os.chown(work, uid, uid)
                os.chmod(work, 0o700)
                for path in Path(work).rglob("*"):
                    os.chown(path, uid, uid)
            student_end, verdict_end = self._ctx.Pipe(duplex=True)
            report_in, report_out = self._ctx.Pipe(duplex=False)
            student = self._ctx.Process(target=_entry, kwargs=dict(conn=student_end, uid=uid, expose=self._expose,
                staging=str(self._private / "mnt"), workdir=work, skip_cells=skip, seed=self.seed,
                cell_timeout=min(self.cell_timeout, budget), question_timeout=self.question_timeout, memory_mb=self.memory_mb))
            verdict = self._ctx.Process(target=_verdict_entry, kwargs=dict(student=verdict_end, report=report_out,
                tests=self.tests, questions=questions, question_timeout=self.question_timeout,
                files=str(self.files_dir)))
            student.start()
            student_end.close()  # from here on, only the student's process and the verdict process hold the pipe
            verdict.start()
            verdict_end.close()
            report_out.close()
            events, ended = [], "kernel died"
            try:
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0 or not report_in.poll(left):
                        ended = f"timeout after {self.timeout:g} s"
                        break
                    event = json.loads(report_in.recv_bytes())
                    events.append(event)
                    if event["event"] in ("done", "lost"):
                        break
            except (EOFError, OSError, ValueError):
                ended = "grader error: the verdict process ended"
            finally:
                _kill_session(student.pid)
                self._release_uid(claim)
                verdict.kill()
                student.join()
                verdict.join()
                report_in.close()
            if not any(e.get("event") == "cell" for e in events) and not ended.startswith("timeout"):
                ended = "grader error: " + _last_line(Path(work) / ".grading.log")
            for e in events:
                if e.get("event") == "isolation" and not self._warned:
                    self._warned = True
                    print(f"vaehw: warning: submissions run with reduced isolation ({e['level']}): {e['reason']}",
                          file=sys.stderr)
            return events, ended


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


def python_paths() -> list[str]:
    """Folders a submission's process must be able to read: the interpreter, libraries, our package."""
    import sysconfig

    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(__file__).resolve().parent}
    paths |= {Path(sysconfig.get_paths()[k]).resolve() for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    # Keep only the outermost of nested paths: mounting an outer folder brings the inner ones.
    return sorted(str(p) for p in paths if not any(q != p and q in p.parents for q in paths))


def _last_line(log: Path) -> str:
    try:
        lines = [l for l in log.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "no output"


def _kill_uid(uid: int) -> None:
    """Kill every process of a submission's own user: nothing it started survives it."""
    for p in psutil.process_iter(["uids"]):
        try:
            if p.info["uids"] and p.info["uids"].real == uid:
                p.kill()
        except psutil.Error:
            continue


def _entry(**kwargs) -> None:
    # One OpenMP thread, set before torch is first imported here (if the server did not preload it):
    # a question is graded in a process forked from this one, and a fork taken while an OpenMP
    # worker thread exists can leave the forked process waiting on that thread forever.
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    from .sandbox import run_submission

    run_submission(**kwargs)


def _verdict_entry(**kwargs) -> None:
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    from .verdict import serve

    serve(**kwargs)


def _kill_session(pid: int) -> None:
    """Kill the submission's process and everything in its session (it called setsid)."""
    for p in psutil.process_iter(["pid"]):
        try:
            if p.pid == pid or os.getsid(p.pid) == pid:
                p.kill()
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
