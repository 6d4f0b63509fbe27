"""The untrusted half of grading: execute a submission's cells and run the probes it is sent.

Runs in a process forked from a pre-imported server (see ``executor``), so torch, IPython and
otter are imported once per batch, not once per submission. Mirrors what ``otter run`` does:
cells tagged ``otter_ignore`` are skipped, numpy and ``random`` are seeded before every cell,
errors do not stop execution, and a question is graded where its ``grader.check`` cell runs
(the rest after the last cell). This process never sees a test file and decides no score: when a
question is ready it tells the verdict process (``verdict.serve``), which sends probes, one at a
time, as source and plain arguments; each runs in its own forked process against the student's
objects and answers with JSON. A question's probes share one time budget, so a probe that hangs
or kills its process costs only that question.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
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

from .confine import confine
from .lockdown import clean_environment, close_fds, set_rlimits
from .verdict import Lost, receive, send

PR_SET_CHILD_SUBREAPER = 36
IGNORE_TAG = "otter_ignore"


def _warm_up() -> None:
    """Run, once in the server, what the tests' first calls would otherwise import in every probe's process.

    An optimiser's first step imports some 800 modules (torch._dynamo and friends, about 0.8 s);
    without this, each probe that trains would pay for it again.
    """
    model = torch.nn.Linear(2, 2).double()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.binary_cross_entropy_with_logits(model(x), torch.ones(3, 2, dtype=torch.float64)).backward()
    optimizer.step()
    torch.autograd.gradcheck(lambda a: (a.exp() * 0.5).sum(-1), (x,))
    cov = torch.eye(2, dtype=torch.float64)
    torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), covariance_matrix=torch.linalg.inv(cov)).log_prob(x)
    torch.trapezoid(x[:, 0], x[:, 1])


_warm_up()


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


def run_probe(call: dict, env: dict, timeout: float, close_fd: int = -1) -> dict:
    """Run one probe in a forked process against the student's objects; its JSON result or error."""
    if timeout <= 0:
        return {"failure": "this question ran out of time"}
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the probe's process: whatever happens, it ends with os._exit
        os.close(read_fd)
        if close_fd >= 0:  # the probe has no business with the verdict connection
            os.close(close_fd)
        try:
            namespace = {"__name__": "probe"}
            exec(compile(call["source"], "<probe>", "exec"), namespace)
            args = [env.get(a["__student__"]) if isinstance(a, dict) and "__student__" in a else a for a in call["args"]]
            try:
                value = namespace[call["name"]](*args)
            except Exception as e:  # a failed precondition or an error in the student's code
                payload = json.dumps({"error": f"{type(e).__name__}: {e}"[:2000]})
            else:
                payload = json.dumps({"value": value})
        except BaseException as e:
            payload = json.dumps({"error": f"{type(e).__name__}: {e}"[:2000]})
        data = payload.encode()
        while data:
            data = data[os.write(write_fd, data):]
        os._exit(0)
    os.close(write_fd)
    chunks, deadline, status = [], time.monotonic() + timeout, None
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
            chunks.append(chunk)
    os.close(read_fd)
    if status:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    if status:
        return {"failure": status}
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return {"failure": "the grading process died"}


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


def run_submission(*, conn, workdir: str, skip_cells: list[int], seed: int | None, cell_timeout: float,
                   question_timeout: float, memory_mb: int, uid: int | None = None, expose: list[str] = (),
                   staging: str = "", mode: str = "none") -> None:
    """Entry point of the forked process for one submission (never returns normally)."""
    torch.set_num_threads(1)  # no OpenMP worker threads: probes run in forked processes
    os.setsid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
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
    nb = nbformat.read(Path(workdir) / "vae_hw.ipynb", as_version=4)
    confine(mode=mode, uid=uid, workdir=workdir, expose=list(expose), staging=Path(staging))

    import otter

    otter.Notebook = _GradingNotebook
    # No history: its saving thread could hold a lock at the moment a probe's process is
    # forked, and that process would then wait on the lock forever.
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    env = shell.user_ns
    budgets: dict[str, float] = {}

    def serve() -> None:
        """Answer the verdict process's probes until it says to go on (or to stop)."""
        while True:
            try:
                message = receive(conn)
            except Lost:
                os._exit(0)
            if message.get("event") == "continue":
                return
            if message.get("event") == "exit":
                _kill_adopted_children()
                os._exit(0)
            call = message["call"]
            q = call["question"]
            start = time.monotonic()
            result = run_probe(call, env, budgets.setdefault(q, question_timeout), conn.fileno())
            budgets[q] -= time.monotonic() - start
            if result.get("failure") == "timeout":
                result["failure"] = f"timeout after {question_timeout:g} s"
                budgets[q] = 0.0
            send(conn, event="result", **result)

    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or index in skip_cells or IGNORE_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        send(conn, event="cell", index=index)
        if seed is not None and not cell.source.startswith("%%"):
            numpy.random.seed(seed)
            random.seed(seed)
        _GradingNotebook.ready.clear()
        if not _run_cell(shell, cell.source, cell_timeout):
            send(conn, event="cell_timeout", index=index, seconds=cell_timeout)
        for q in dict.fromkeys(_GradingNotebook.ready):
            send(conn, event="ready", question=q)
            serve()
    send(conn, event="cells_done")
    serve()
    os._exit(0)
