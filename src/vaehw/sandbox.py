"""The inside of one grading run: execute a submission's cells, then grade each question.

Runs in a process forked from a pre-imported server (see ``executor``), so torch, IPython and
otter are imported once per batch, not once per submission. Mirrors what ``otter run`` does:
cells tagged ``otter_ignore`` are skipped, numpy and ``random`` are seeded before every cell,
errors do not stop execution, and a question is graded where its ``grader.check`` cell runs
(the rest after the last cell). Each question is graded in its own forked process with its own
time budget, so a test that hangs or kills its process costs only that question.
Progress is written as JSON lines to ``events``: the executor keeps every finished question
even if this process dies later.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import resource
import select
import signal
import sys
import time
from pathlib import Path

import nbformat
import numpy
import torch  # imported once in the server: the expensive part of starting a run
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config
from otter.test_files import ExceptionTestFile

PR_SET_CHILD_SUBREAPER = 36
IGNORE_TAG = "otter_ignore"


class CellTimeout(BaseException):
    """Raised in the cell that runs past its time budget (a BaseException: `except Exception` misses it)."""


class _GradingNotebook:
    """Stands in for ``otter.Notebook`` while grading: ``check`` marks a question as ready."""

    ready: list[str] = []

    def __init__(self, *args, **kwargs):
        pass

    def check(self, question, *args, **kwargs):
        type(self).ready.append(str(question))

    def __getattr__(self, name):  # export, check_all, to_pdf, ... do nothing while grading
        return lambda *args, **kwargs: None


def _emit(events, **record) -> None:
    record["t"] = round(time.monotonic(), 3)
    events.write(json.dumps(record) + "\n")
    events.flush()


def grade_question(tests_source: str, env: dict, timeout: float) -> dict:
    """Run one question's test cases in a forked process; return its score and per-case results."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the grading process: whatever happens, it ends with os._exit
        os.close(read_fd)
        try:
            test_file = ExceptionTestFile.from_string(tests_source)
            cases = []
            for tc in test_file.test_cases:
                try:
                    tc.body.call_func(env)
                    passed, message = True, ""
                except Exception as e:  # a failed assertion or an error in the student's code
                    passed, message = False, f"{type(e).__name__}: {e}"
                cases.append({"name": tc.body.test_func.__name__, "points": tc.points, "hidden": tc.hidden,
                              "passed": passed, "message": message[:2000]})
            payload = json.dumps({"cases": cases})
        except BaseException as e:
            payload = json.dumps({"error": f"{type(e).__name__}: {e}"[:2000]})
        os.write(write_fd, payload.encode())
        os._exit(0)
    os.close(write_fd)
    chunks, deadline, status = [], time.monotonic() + timeout, None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            status = f"timeout after {timeout:g} s"
            break
        ready, _, _ = select.select([read_fd], [], [], left)
        if ready:
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(read_fd)
    if status:
        os.kill(pid, signal.SIGKILL)
    _, wait_status = os.waitpid(pid, 0)
    try:
        result = json.loads(b"".join(chunks))
    except ValueError:
        died = os.WIFSIGNALED(wait_status) or os.waitstatus_to_exitcode(wait_status) != 0
        result = {"error": status or ("the grading process died" if died else "no result")}
    if status:
        result = {"error": status}
    return result


def _run_cell(shell: InteractiveShell, source: str, timeout: float) -> bool:
    """Run one cell; errors are the student's and do not stop grading. False if it timed out."""
    timed_out = False

    def on_alarm(signum, frame):
        nonlocal timed_out
        timed_out = True
        raise CellTimeout(f"cell ran past {timeout:g} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        shell.run_cell(source, store_history=False, silent=False)
    except CellTimeout:
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return not timed_out


def _kill_adopted_children() -> None:
    """Kill every process left behind (orphans were re-parented to us, the subreaper)."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        try:
            child.kill()
        except psutil.Error:
            pass
    for child in psutil.Process().children():
        try:
            child.wait(1)
        except psutil.Error:
            pass


CLONE_NEWNS, MS_REC, MS_PRIVATE, MS_BIND = 0x20000, 0x4000, 1 << 18, 0x1000


def _mount(libc, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()
    if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        raise OSError(ctypes.get_errno(), f"mount {target}: {os.strerror(ctypes.get_errno())}")


MS_RDONLY, MS_REMOUNT, MS_NOSUID, MS_NODEV = 1, 32, 2, 4
SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64")


def enter_minimal_root(*, workdir: str, expose: list[str], staging: Path) -> None:
    """Confine this process to a new root holding only the system, Python and its own folder.

    In a private mount namespace, a tmpfs becomes the root directory; the system folders and the
    Python installation are mounted into it read-only, the submission's folder read-write, and a
    fresh /tmp and /proc are added. Nothing else exists there: no repository, no hidden tests,
    no other submission, no home folders.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    _mount(libc, "none", "/", None, MS_REC | MS_PRIVATE)
    new_root = staging / f"root-{os.getpid()}"
    new_root.mkdir(parents=True, exist_ok=True)
    _mount(libc, "tmpfs", str(new_root), "tmpfs", MS_NOSUID, "mode=0755,size=64m")
    for name in ("dev", "proc", "tmp"):  # before the binds: the submission's folder may live in /tmp
        (new_root / name).mkdir()
    _mount(libc, "/dev", str(new_root / "dev"), None, MS_BIND | MS_REC)
    _mount(libc, "proc", str(new_root / "proc"), "proc", MS_NOSUID | MS_NODEV)
    _mount(libc, "tmpfs", str(new_root / "tmp"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=256m")
    inside_system = lambda p: any(p == d or p.startswith(d + "/") for d in SYSTEM_DIRS)
    for source in [*SYSTEM_DIRS, *(p for p in expose if not inside_system(p)), workdir]:
        src = Path(source)
        target = new_root / src.relative_to("/")
        if src.is_symlink():  # /bin -> usr/bin on merged-/usr systems
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(os.readlink(src))
            continue
        if not src.is_dir():
            continue
        target.mkdir(parents=True, exist_ok=True)
        _mount(libc, str(src), str(target), None, MS_BIND | MS_REC)
        if source != workdir:
            _mount(libc, None, str(target), None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)
    os.chroot(new_root)
    os.chdir(workdir)


def _python_paths_here() -> list[str]:
    import sysconfig

    return [sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")]


def readable_by_anyone(paths: list[str]) -> bool:
    """Can a user with no account reach and read these folders (every parent enterable)?"""
    for path in map(Path, paths):
        if not os.stat(path).st_mode & 0o005 == 0o005:
            return False
        if any(not os.stat(parent).st_mode & 0o001 for parent in path.parents):
            return False
    return True


def confine(*, uid: int, workdir: str, expose: list[str], staging: Path, events) -> None:
    """As root: a minimal root and a user id of our own; degrade, and say so, where the host forbids it.

    Containers without CAP_SYS_ADMIN (Docker's default) refuse the mount namespace: then the run
    keeps the whole filesystem view but still drops to its own user id, which is enough to keep
    root-only files (the hidden tests) unreadable, provided that user can read Python at all.
    """
    try:
        if not expose:
            raise OSError("the minimal root is switched off")
        enter_minimal_root(workdir=workdir, expose=expose, staging=staging)
    except OSError as e:
        expose = expose or _python_paths_here()
        if not readable_by_anyone(expose):
            _emit(events, event="isolation", level="none", reason=f"{e}; Python is not readable by other users")
            return
        _emit(events, event="isolation", level="user id only", reason=str(e))
    os.umask(0o077)
    _drop_privileges(uid, workdir)


def _drop_privileges(uid: int, workdir: str) -> None:
    """Become an unprivileged user of our own: no access to the grader's files or other submissions."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    os.environ.update(HOME=workdir, USER="student", IPYTHONDIR=f"{workdir}/.ipython", MPLCONFIGDIR=f"{workdir}/.matplotlib")


def run_submission(*, workdir: str, events_path: str, tests_dir: str, questions: list[str], skip_cells: list[int],
                   seed: int | None, cell_timeout: float, question_timeout: float, memory_mb: int,
                   uid: int | None = None, expose: list[str] = (), staging: str = "") -> None:
    """Entry point of the forked process for one submission (never returns normally)."""
    torch.set_num_threads(1)  # no OpenMP worker threads: questions are graded in forked processes
    events = open(events_path, "a", encoding="utf-8")
    _emit(events, event="start")
    os.setsid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    log = open(Path(workdir) / ".grading.log", "ab", buffering=0)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    os.chdir(workdir)
    sys.path.insert(0, workdir)
    os.environ["MPLBACKEND"] = "Agg"  # no display; plots are drawn and discarded
    if memory_mb:
        import psutil

        limit = psutil.Process().memory_info().vms + memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 2**20, 64 * 2**20))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    nb = nbformat.read(Path(workdir) / "vae_hw.ipynb", as_version=4)
    tests = {q: (Path(tests_dir) / f"{q}.py").read_text(encoding="utf-8") for q in questions}
    if uid is not None:
        confine(uid=uid, workdir=workdir, expose=list(expose), staging=Path(staging), events=events)

    import otter

    otter.Notebook = _GradingNotebook
    # No history: its saving thread could hold a lock at the moment a question's process is
    # forked, and that process would then wait on the lock forever.
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    _emit(events, event="shell")
    env = shell.user_ns
    pending = list(questions)

    def grade(q: str) -> None:
        _emit(events, event="question", question=q, **grade_question(tests[q], env, question_timeout))
        pending.remove(q)

    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or index in skip_cells or IGNORE_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        _emit(events, event="cell", index=index)
        if seed is not None and not cell.source.startswith("%%"):
            numpy.random.seed(seed)
            random.seed(seed)
        _GradingNotebook.ready.clear()
        if not _run_cell(shell, cell.source, cell_timeout):
            _emit(events, event="cell_timeout", index=index, seconds=cell_timeout)
        for q in list(_GradingNotebook.ready):
            if q in pending:
                grade(q)
    for q in list(pending):
        grade(q)
    _emit(events, event="done")
    events.close()
    _kill_adopted_children()
    os._exit(0)
