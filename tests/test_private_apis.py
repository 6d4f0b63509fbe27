"""The private parts of other libraries the grader still relies on: a change in them fails here first.

multiprocessing has no public way to learn which modules a running forkserver preloaded or to stop
it (``executor._context`` and ``Executor._start`` need both). Everything else is public API.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import time


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_forkserver_reports_its_pid_and_preloads_and_stops():
    """Does the forkserver still keep its pid and preload list where the executor reads them, and stop on _stop()?"""
    server = multiprocessing.forkserver._forkserver
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["json"])
    try:
        multiprocessing.forkserver.ensure_running()
        pid = server._forkserver_pid
        assert isinstance(pid, int) and _alive(pid)
        assert server._preload_modules == ["json"]
        server._stop()
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server._forkserver_pid is None and not _alive(pid)
    finally:
        ctx.set_forkserver_preload([])
