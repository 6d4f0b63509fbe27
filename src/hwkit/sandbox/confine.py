"""Confine a submission's process: namespaces and a minimal root where the host allows, else Landlock.

Modes, strongest first (the executor picks one with ``detect_mode`` before any student code runs,
and the student's process must enter exactly that mode or stop):

- ``namespaces``: new mount, network, IPC and PID namespaces (plus a user namespace when the
  grader is not root), a root directory holding only the system folders, Python and a size-capped
  tmpfs working folder; as root, a user id of its own. Then the ``landlock`` layer on top.
- ``landlock``: the whole filesystem stays in view but Landlock lets the process read only the
  system folders, Python, /proc, /sys and /dev and write only its folder; seccomp denies sockets,
  SysV IPC, new sessions, namespaces and tracing; as root, a user id of its own.
- ``none``: only rlimits; the executor refuses to grade in this mode without ``--insecure``.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys
from pathlib import Path

from hwkit.sandbox import lockdown

MODES = ("namespaces", "landlock", "none")
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x8000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 0x1000, 0x4000, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, ST_RELATIME = 1024, 2048, 1 << 21, 4096
PR_SET_PDEATHSIG = 1
SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64")
WORKDIR_MB, TMP_MB, SHM_MB = 128, 64, 16  # tmpfs sizes: the submission's whole disk use in this mode


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _mount(libc, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()
    if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        raise OSError(ctypes.get_errno(), f"mount {target}: {os.strerror(ctypes.get_errno())}")


def _bind_readonly(libc, source: str, target: str) -> None:
    """Bind ``source`` at ``target`` read-only, keeping the flags a user namespace may not clear."""
    _mount(libc, source, target, None, MS_BIND | MS_REC)
    st = os.statvfs(target).f_flag
    kept = (st & (MS_NODEV | MS_NOEXEC)) | (MS_NOATIME if st & MS_NOATIME else 0) \
        | (MS_NODIRATIME if st & MS_NODIRATIME else 0) | (MS_RELATIME if st & ST_RELATIME else 0)
    _mount(libc, None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | kept)


def namespace_flags(as_root: bool) -> int:
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWPID
    return flags if as_root else flags | CLONE_NEWUSER


def _enter_namespaces(as_root: bool) -> None:
    """Unshare every namespace; without root, map our own ids into a new user namespace."""
    uid, gid = os.getuid(), os.getgid()
    libc = _libc()
    if libc.unshare(namespace_flags(as_root)) != 0:
        raise OSError(ctypes.get_errno(), f"unshare: {os.strerror(ctypes.get_errno())}")
    if not as_root:
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")


def _become_init() -> None:
    """Fork into the new PID namespace: the child goes on as its init, this process waits and mirrors its end.

    When the child (PID 1 there) ends, the kernel kills everything left in the namespace.
    """
    pid = os.fork()
    if pid == 0:
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        return
    for fd in lockdown.open_fds():  # the waiting parent needs nothing: the channel stays the child's
        try:
            os.close(fd)
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def enter_minimal_root(*, workdir: str, expose: list[str], staging: Path) -> None:
    """Confine this process to a new root holding only the system, Python and its own folder.

    In the private mount namespace a tmpfs becomes the root directory; the system folders and
    the Python installation are bound into it read-only, the submission's files are copied into a
    size-capped tmpfs at the same path, and a fresh /tmp, /dev/shm and /proc (of the new PID
    namespace) are added. No repository, hidden tests, other submission or home folder exists there.
    """
    libc = _libc()
    _mount(libc, "none", "/", None, MS_REC | MS_PRIVATE)
    new_root = staging / f"root-{os.getpid()}-{os.urandom(4).hex()}"
    new_root.mkdir(parents=True, exist_ok=True)
    _mount(libc, "tmpfs", str(new_root), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=8m")
    for name in ("dev", "proc", "tmp"):
        (new_root / name).mkdir()
    _mount(libc, "/dev", str(new_root / "dev"), None, MS_BIND | MS_REC)
    if (new_root / "dev" / "shm").is_dir():  # the host's shared memory would be a channel between submissions
        _mount(libc, "tmpfs", str(new_root / "dev" / "shm"), "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={SHM_MB}m")
    _mount(libc, "proc", str(new_root / "proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _mount(libc, "tmpfs", str(new_root / "tmp"), "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={TMP_MB}m")
    inside_system = lambda p: any(p == d or p.startswith(d + "/") for d in SYSTEM_DIRS)
    for source in [*SYSTEM_DIRS, *(p for p in expose if not inside_system(p))]:
        src = Path(source)
        target = new_root / src.relative_to("/")
        if src.is_symlink():  # /bin -> usr/bin on merged-/usr systems
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(os.readlink(src))
        elif src.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            _bind_readonly(libc, str(src), str(target))
    work = new_root / Path(workdir).relative_to("/")
    work.mkdir(parents=True, exist_ok=True)
    st = os.stat(workdir)
    _mount(libc, "tmpfs", str(work), "tmpfs", MS_NOSUID | MS_NODEV,
           f"mode=0700,size={WORKDIR_MB}m,uid={st.st_uid},gid={st.st_gid}")
    shutil.copytree(workdir, work, dirs_exist_ok=True, ignore=lambda d, names: [".grading.log"])
    for path in [work, *work.rglob("*")]:
        os.chown(path, st.st_uid, st.st_gid, follow_symlinks=False)
    os.chroot(new_root)
    os.chdir(workdir)


def python_paths() -> list[str]:
    """Folders a submission's process must be able to read: the interpreter, libraries, our package."""
    import sysconfig

    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(__file__).resolve().parent.parent}
    paths |= {Path(sysconfig.get_paths()[k]).resolve() for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    # Packages found through PYTHONPATH; never a bare folder on sys.path, which may be the repository itself.
    paths |= {Path(p).resolve() for p in sys.path if p and Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()}
    # Keep only the outermost of nested paths: mounting an outer folder brings the inner ones.
    return sorted(str(p) for p in paths if not any(q != p and q in p.parents for q in paths))


def readable_by_anyone(paths: list[str]) -> bool:
    """Can a user with no account reach and read these folders (every parent enterable)?"""
    for path in map(Path, paths):
        if not os.stat(path).st_mode & 0o005 == 0o005:
            return False
        if any(not os.stat(parent).st_mode & 0o001 for parent in path.parents):
            return False
    return True


def confine(*, mode: str, uid: int | None, workdir: str, expose: list[str], staging: Path) -> None:
    """Enter ``mode`` exactly (as the executor decided), or raise: never a weaker mode than announced.

    ``uid``: as root, the run's own user id; None without root. Returns in the process that goes on
    to run the notebook (in ``namespaces`` mode, the init of the new PID namespace).
    """
    if mode not in MODES:
        raise ValueError(f"unknown confinement mode {mode!r}")
    as_root = os.geteuid() == 0
    expose = expose or python_paths()
    if mode == "namespaces":
        _enter_namespaces(as_root)
        _become_init()
        enter_minimal_root(workdir=workdir, expose=expose, staging=staging)
    os.umask(0o077)
    if mode == "none":
        return
    # As root: a user id of our own (keeping only the right to read, if Python is unreadable to others);
    # else give up the capabilities a user namespace gave us.
    lockdown.drop_capabilities(uid, keep_reading=uid is not None and not readable_by_anyone(expose))
    lockdown.limit_processes(own_namespace=mode == "namespaces")
    lockdown.restrict_filesystem(read=[*SYSTEM_DIRS, *expose, "/proc", "/sys", "/dev"], write=[workdir])
    lockdown.deny_syscalls()


def _probe(conn, as_root: bool, staging: str) -> None:
    """In a throwaway process: can this host give a submission its own namespaces and a tmpfs root?"""
    try:
        _enter_namespaces(as_root)
        pid = os.fork()
        if pid == 0:
            try:
                libc = _libc()
                _mount(libc, "none", "/", None, MS_REC | MS_PRIVATE)
                target = Path(staging) / f"probe-{os.getpid()}"
                target.mkdir(parents=True, exist_ok=True)
                _mount(libc, "tmpfs", str(target), "tmpfs", MS_NOSUID | MS_NODEV, "size=1m")
                _mount(libc, "proc", str(target), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
                os._exit(0)
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise OSError("mounts in a new namespace are refused")
        conn.send(("namespaces", ""))
    except OSError as e:
        why = f"namespaces unavailable ({e})"
        if lockdown.landlock_abi() >= lockdown.MIN_LANDLOCK_ABI and lockdown.seccomp_available():
            conn.send(("landlock", why))
        else:
            conn.send(("none", f"{why}; Landlock ABI {lockdown.landlock_abi()} (need {lockdown.MIN_LANDLOCK_ABI}), "
                               f"seccomp {'available' if lockdown.seccomp_available() else 'unavailable'}"))


def choose_mode(ctx, staging: str, namespaces: bool = True) -> tuple[str, str]:
    """The strongest mode this host allows, and why not a stronger one; run by the grader, never by a submission.

    ``ctx``: the multiprocessing context whose server forks the submissions (the probe runs as they will).
    """
    if namespaces:
        here, there = ctx.Pipe(duplex=False)
        probe = ctx.Process(target=_probe, args=(there, os.geteuid() == 0, staging))
        probe.start()
        there.close()
        try:
            mode, reason = here.recv() if here.poll(60) else ("none", "the confinement probe did not answer")
        except (EOFError, OSError):
            mode, reason = "none", "the confinement probe ended without an answer"
        probe.join(5)
        here.close()
        return mode, reason
    if lockdown.landlock_abi() < lockdown.MIN_LANDLOCK_ABI or not lockdown.seccomp_available():
        return "none", f"namespaces switched off; Landlock ABI {lockdown.landlock_abi()} or seccomp unavailable"
    return "landlock", "namespaces switched off"
