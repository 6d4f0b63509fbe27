"""The untrusted half of grading: run a submission's cells, then answer the grader's probes.

Runs in a process forked from a pre-imported server (see ``executor``), so torch, IPython and
otter are imported once per batch, not once per submission. Three kinds of process:

- the **supervisor** (``run_submission``) confines itself, then never runs student code: it
  forks the runner, watches it, and afterwards relays the verdict process's probe calls;
- the **runner** executes the cells as ``otter run`` does (cells tagged ``otter_ignore`` skipped,
  numpy and ``random`` seeded before every cell, errors do not stop execution). Where a question's
  ``grader.check`` cell runs, it forks a **snapshot** of itself, which waits; after the last cell
  it forks one more for the questions never checked, then ends;
- once the runner has ended (or was killed: a crash or a hang in a later cell costs no earlier
  question), the supervisor kills every process of the submission but the snapshots and stops
  those. Then, and only then, the verdict process grades: the public tests of every question
  first, then the hidden ones, each question against its own snapshot, woken for that alone.

No cell runs after any probe, and no public result is computed after any hidden probe, so
nothing a hidden probe carries can reach code that runs later or a message a student reads.
Each probe runs in a process forked from the snapshot for that one call, and answers with JSON
(``wire.encode``). A question's probes share one time budget.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import select
import signal
import socket
import sys
import time
import traceback
from pathlib import Path

import nbformat
import numpy
import torch  # imported once in the server: the expensive part of starting a run
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from hwkit.sandbox.confine import confine
from hwkit.sandbox.lockdown import clean_environment, close_fds, set_rlimits
from hwkit.wire import Lost, encode, identifier, one_line, receive, send

PR_SET_CHILD_SUBREAPER = 36
IGNORE_TAG = "otter_ignore"


class CellTimeout(BaseException):
    """Raised in the cell that runs past its time budget (a BaseException: `except Exception` misses it)."""


END = "*end*"  # the snapshot taken after the last cell: grades every question never checked
GRACE = 10.0  # seconds past a cell's budget before a cell that ignores its alarm is killed


class _GradingNotebook:
    """Stands in for ``otter.Notebook`` in the runner: ``check`` takes a snapshot for that question."""

    taken: set[str] = set()
    channel: socket.socket | None = None
    env: dict = {}
    question_timeout: float = 60.0

    def __init__(self, *args, **kwargs):
        pass

    def check(self, question, *args, **kwargs):
        question = str(question)
        if question not in type(self).taken and identifier(question) == question:
            type(self).taken.add(question)
            take_snapshot(question)

    def __getattr__(self, name):  # export, check_all, to_pdf, ... do nothing while grading
        return lambda *args, **kwargs: None


def take_snapshot(question: str) -> None:
    """Fork a copy of the runner as it is now; it waits, then answers probes for ``question``."""
    nb = _GradingNotebook
    try:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
    except OSError:  # no process or descriptor left (the notebook used them up): graded from a later snapshot
        return
    if pid == 0:  # the snapshot: whatever happens, it ends with os._exit
        try:
            theirs.close()
            nb.channel.close()  # the runner's channel is not the snapshot's business
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            _serve_snapshot(ours, nb.env, nb.question_timeout)
        finally:
            os._exit(0)
    try:
        socket.send_fds(nb.channel, [json.dumps({"event": "snapshot", "question": question, "pid": pid}).encode()],
                        [theirs.fileno()])
    except OSError:
        pass
    ours.close()
    theirs.close()


def _serve_snapshot(sock: socket.socket, env: dict, question_timeout: float) -> None:
    """In a snapshot: answer each probe call the supervisor relays, until told to stop."""
    from multiprocessing.connection import Connection

    conn = Connection(sock.detach())
    while True:
        try:
            message = receive(conn)
        except Lost:
            return
        call = message.get("call")
        if not isinstance(call, dict):
            return
        result = run_probe(call, env, float(message.get("budget", question_timeout)), conn.fileno())
        send(conn, event="result", **result)


def _error_record(e: BaseException) -> dict:
    """What the grader may learn of an error raised in a probe: type, the function the probe called, message."""
    frames = traceback.extract_tb(e.__traceback__)
    probe = [i for i, f in enumerate(frames) if f.filename == "<probe>"]
    function = frames[probe[-1] + 1].name if probe and probe[-1] + 1 < len(frames) else "?"
    try:
        message = one_line(str(e), 300)
    except BaseException:
        message = ""
    return {"type": identifier(type(e).__name__), "function": identifier(function), "message": message}


def run_probe(call: dict, env: dict, timeout: float, close_fd: int = -1) -> dict:
    """Run one probe in a forked process against the student's objects; its encoded result or error."""
    if timeout <= 0:
        return {"failure": "this question ran out of time"}
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the probe's process: whatever happens, it ends with os._exit
        os.close(read_fd)
        if close_fd >= 0:  # the probe has no business with the snapshot's channel
            os.close(close_fd)
        try:
            from hwkit.wire import decode

            namespace = {"__name__": "probe"}
            exec(compile(call["source"], "<probe>", "exec"), namespace)
            args = [env.get(a["__student__"]) if isinstance(a, dict) and "__student__" in a else decode(a)
                    for a in call["args"]]
            try:
                value = namespace[call["name"]](*args)
                payload = json.dumps({"value": encode(value)}, allow_nan=False)
            except BaseException as e:  # an error in the student's code, or a result that does not encode
                payload = json.dumps({"error": _error_record(e)})
        except BaseException as e:
            payload = json.dumps({"error": _error_record(e)})
        data = payload.encode()
        while data:
            data = data[os.write(write_fd, data):]
        os._exit(0)
    os.close(write_fd)
    chunks, deadline, status, size = [], time.monotonic() + timeout, None, 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            status = "timeout"
            break
        ready, _, _ = select.select([read_fd], [], [], left)
        if ready:
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_ANSWER:
                status = "too large"
                break
            chunks.append(chunk)
    os.close(read_fd)
    if status:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    if status == "timeout":
        return {"failure": "timeout"}
    if status:
        return {"failure": "the result is too large"}
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return {"failure": "the grading process died"}


MAX_ANSWER = 12 * 2**20  # bytes of one probe's answer


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




def run_submission(*, conn, workdir: str, notebook: str, skip_cells: list[int], seed: int | None, cell_timeout: float,
                   question_timeout: float, memory_mb: int, uid: int | None = None, expose: list[str] = (),
                   staging: str = "", mode: str = "none") -> None:
    """Entry point of the forked process for one submission: the supervisor (never returns normally)."""
    torch.set_num_threads(1)  # no OpenMP worker threads: probes run in forked processes
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    log = open(Path(workdir) / ".grading.log", "ab", buffering=0)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    close_fds(keep={conn.fileno(), log.fileno()})  # nothing but the channel to the verdict process and the log
    clean_environment(workdir)
    os.chdir(workdir)
    sys.path.insert(0, workdir)
    if memory_mb:
        import psutil

        set_rlimits(psutil.Process().memory_info().vms + memory_mb * 2**20)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    nb = nbformat.read(Path(workdir) / notebook, as_version=4)
    confine(mode=mode, uid=uid, workdir=workdir, expose=list(expose), staging=Path(staging))
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    runner = os.fork()
    if runner == 0:
        try:
            conn.close()  # the verdict's connection stays with the supervisor alone
            ours.close()
            _run_cells(nb, theirs, skip_cells=skip_cells, seed=seed, cell_timeout=cell_timeout,
                       question_timeout=question_timeout)
        finally:
            os._exit(0)
    theirs.close()
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # the submission's processes cannot trace or read this one
    snapshots, ended, last_cell = _watch_runner(runner, ours, conn, cell_timeout)
    _purge(keep=[pid for pid, _ in snapshots.values()])
    for pid, _ in snapshots.values():
        _signal(pid, signal.SIGSTOP)
    send(conn, event="cells_end", checked=sorted(q for q in snapshots if q != END), end=END in snapshots,
         ended=ended, cell=last_cell)
    _relay(conn, snapshots, question_timeout)
    _purge(keep=[])
    os._exit(0)


PR_SET_DUMPABLE = 4


def _run_cells(nb, channel: socket.socket, *, skip_cells, seed, cell_timeout: float, question_timeout: float) -> None:
    """The runner: execute the cells in order, taking a snapshot at each first check and after the last cell."""
    import otter

    def tell(**event) -> None:
        try:
            channel.send(json.dumps(event).encode())
        except OSError:
            pass

    otter.Notebook = _GradingNotebook
    # No history: its saving thread could hold a lock at the moment a snapshot or probe is
    # forked, and that process would then wait on the lock forever.
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    _GradingNotebook.channel, _GradingNotebook.env = channel, shell.user_ns
    _GradingNotebook.question_timeout = question_timeout
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or index in skip_cells or IGNORE_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        tell(event="cell", index=index)
        if seed is not None and not cell.source.startswith("%%"):
            numpy.random.seed(seed)
            random.seed(seed)
        if not _run_cell(shell, cell.source, cell_timeout):
            tell(event="cell_timeout", index=index, seconds=cell_timeout)
    take_snapshot(END)
    tell(event="cells_done")


def _watch_runner(runner: int, channel: socket.socket, conn, cell_timeout: float):
    """Follow the runner until it ends; kill it if a cell outlives its budget. Returns its snapshots.

    Everything the runner sends is student-controlled: only well-formed events are taken, and a
    snapshot's channel is the file descriptor that came with its event.
    """
    from multiprocessing.connection import Connection

    snapshots: dict[str, tuple[int, Connection]] = {}
    pidfd = os.pidfd_open(runner)
    last_cell, since, done, hung = -1, time.monotonic(), False, False
    while True:
        wait = max(since + cell_timeout + GRACE - time.monotonic(), 0)
        ready, _, _ = select.select([channel, pidfd], [], [], wait)
        if channel in ready:
            try:
                data, fds, _, _ = socket.recv_fds(channel, 4096, 2)
            except OSError:
                data, fds = b"", []
            event = _parse(data)
            kind = event.get("event")
            if kind == "cell" and isinstance(event.get("index"), int):
                last_cell, since = event["index"], time.monotonic()
                send(conn, event="cell", index=last_cell)
            elif kind == "cell_timeout" and isinstance(event.get("index"), int):
                send(conn, event="cell_timeout", index=event["index"], seconds=cell_timeout)
            elif kind == "snapshot" and len(fds) == 1 and isinstance(event.get("pid"), int) \
                    and isinstance(event.get("question"), str) and event["question"] not in snapshots:
                snapshots[event["question"][:40]] = (event["pid"], Connection(fds.pop()))
            elif kind == "cells_done":
                done = True
            for fd in fds:
                os.close(fd)
            if data:
                continue
        if pidfd in ready or not ready and hung:
            break
        if not ready:  # the cell ignored its alarm: kill the runner; its snapshots stay
            hung = True
            _signal(runner, signal.SIGKILL)
    os.close(pidfd)
    try:
        os.waitpid(runner, 0)
    except ChildProcessError:
        pass
    if done:
        ended = ""
    elif hung:
        ended = f"cell {last_cell} timed out after {cell_timeout + GRACE:g} s"
    else:
        ended = f"kernel died in cell {last_cell}"
    return snapshots, ended, last_cell


def _parse(data: bytes) -> dict:
    try:
        event = json.loads(data)
    except (ValueError, RecursionError):
        return {}
    return event if isinstance(event, dict) else {}


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _purge(*, keep: list[int]) -> None:
    """Kill every process the submission left (orphans were re-parented to us, the subreaper) but ``keep``."""
    import psutil

    me = psutil.Process()
    for _ in range(3):  # a process may fork while we kill: go round again
        left = [p for p in me.children(recursive=True) if p.pid not in keep]
        if not left:
            break
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(left, timeout=1)
    while True:  # reap what we adopted
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break


def _relay(conn, snapshots: dict, question_timeout: float) -> None:
    """Relay the verdict's probe calls, each to the snapshot of the question being graded."""
    budgets: dict[str, float] = {}
    current: tuple[int, object] | None = None
    question = ""
    while True:
        try:
            message = receive(conn)
        except Lost:
            return
        event = message.get("event")
        if event == "serve":
            question = str(message.get("question"))
            current = snapshots.get(question) or snapshots.get(END)
            if current:
                _signal(current[0], signal.SIGCONT)
            continue
        if event == "pause":
            if current:
                _signal(current[0], signal.SIGSTOP)
            current = None
            continue
        if event != "call":
            return
        budget = budgets.setdefault(question, question_timeout)
        if current is None or budget <= 0:
            send(conn, event="result", failure=f"timeout after {question_timeout:g} s" if current else "not graded")
            continue
        start = time.monotonic()
        result = _ask(current, message.get("call"), budget)
        budgets[question] = budget - (time.monotonic() - start)
        if result.get("failure") == "timeout":
            result["failure"] = f"timeout after {question_timeout:g} s"
            budgets[question] = 0.0
        send(conn, event="result", **result)


def _ask(snapshot, call, budget: float) -> dict:
    """One probe call to a snapshot; its answer, or a failure if it is too slow or gone."""
    pid, channel = snapshot
    try:
        send(channel, call=call, budget=budget)
        answer = receive(channel, budget + GRACE)
    except (Lost, OSError, ValueError):
        _signal(pid, signal.SIGKILL)
        return {"failure": "the grading process died"}
    keep = {k: answer[k] for k in ("value", "error", "failure") if k in answer}
    return keep if len(keep) == 1 else {"failure": "the grading process died"}
