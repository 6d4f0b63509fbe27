"""After a submission: kill what it started, remove its folder, and check that nothing of it remains."""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

import psutil

SHARED_FOLDERS = ("/dev/shm", "/tmp", "/var/tmp")  # where a run with a user id of its own could leave files
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # one BLAS/OpenMP thread in every grading process


def kill_tree(pid: int) -> None:
    """Kill a process we started in a session of its own (``otter run``), its group and every descendant
    (a Jupyter kernel starts a session of its own too)."""
    try:
        family = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for proc in family:
        try:
            proc.kill()
        except psutil.Error:
            pass
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def remove_tree(root: str | Path, max_entries: int = 2_000_000) -> None:
    """Delete a folder the student filled, however deep, without recursion or long paths.

    Each subfolder met is first moved up to the top folder under a fresh name, so at most two
    descriptors are open and no path grows with the depth. Symbolic links are removed, never followed.
    """
    root = str(root)
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        os.chmod(root, 0o700)
        top = os.open(root, flags)
    except FileNotFoundError:
        return
    todo, counter, seen = [None], 0, 0  # None: the top folder itself; else a name directly under it
    try:
        while todo:
            name = todo.pop()
            if name is not None:
                os.chmod(name, 0o700, dir_fd=top, follow_symlinks=False)
            fd = top if name is None else os.open(name, flags, dir_fd=top)
            try:
                for entry in list(os.scandir(fd)):
                    seen += 1
                    if seen > max_entries:
                        raise OSError(f"more than {max_entries} entries in {root}")
                    if entry.is_dir(follow_symlinks=False):
                        counter += 1
                        moved = f".hwkit-rm-{counter}"
                        os.rename(entry.name, moved, src_dir_fd=fd, dst_dir_fd=top)
                        todo.append(moved)
                    else:
                        os.unlink(entry.name, dir_fd=fd)
            finally:
                if fd != top:
                    os.close(fd)
            if name is not None:
                os.rmdir(name, dir_fd=top)
    finally:
        os.close(top)
    os.rmdir(root)


def _processes(uid: int | None, session: int) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["pid", "uids", "status"]):
        try:
            if p.info["status"] == psutil.STATUS_ZOMBIE:
                continue  # already dead, waiting for its parent
            if p.pid == session or os.getsid(p.pid) == session or (uid is not None and p.info["uids"].real == uid):
                found.append(p)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return found


def kill_run(uid: int | None, session: int, rounds: int = 20) -> list[str]:
    """Kill the run's processes (its session; as root, also its user id) until none is left.

    A process cannot leave the session (its seccomp filter or PID namespace sees to that), but it
    may fork while we kill, so this repeats. Returns what could not be killed.
    """
    me = os.getpid()
    for _ in range(rounds):
        left = [p for p in _processes(uid, session) if p.pid != me]
        if not left:
            return []
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        time.sleep(0.02)
    return [f"process {p.pid}" for p in _processes(uid, session) if p.pid != me]


def files_left(uid: int | None, workdir: str) -> list[str]:
    """Files a run's own user id owns outside its working folder (as root: each run has its own id)."""
    if uid is None:
        return []
    found = []
    for folder in SHARED_FOLDERS:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                # a grader's working folders (hwkit-sub-*) are its own to remove, whoever ran in them
                if not entry.name.startswith("hwkit-sub-") and entry.path != workdir \
                        and entry.stat(follow_symlinks=False).st_uid == uid:
                    found.append(entry.path)
            except OSError:
                continue
    return found


def ipc_left(uid: int | None, remove: bool = True) -> list[str]:
    """SysV IPC objects a run's own user id owns (as root; without root, seccomp denies creating any),
    removed unless ``remove`` is false."""
    if uid is None:
        return []
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    removers = {"shm": lambda i: libc.shmctl(i, 0, None), "sem": lambda i: libc.semctl(i, 0, 0),
                "msg": lambda i: libc.msgctl(i, 0, None)}  # IPC_RMID
    found = []
    for kind, id_field in (("shm", "shmid"), ("sem", "semid"), ("msg", "msqid")):
        try:
            header, *lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        except (OSError, ValueError):
            continue
        for line in lines:
            fields = dict(zip(header.split(), line.split()))
            if fields.get("uid") == str(uid):
                found.append(f"SysV {kind} {fields.get('key')}")
                if remove:
                    removers[kind](int(fields[id_field]))
    return found


def remove_files(paths: list[str]) -> None:
    for path in paths:
        try:
            if stat.S_ISDIR(os.lstat(path).st_mode):
                remove_tree(path)
            else:
                os.unlink(path)
        except OSError:
            continue
