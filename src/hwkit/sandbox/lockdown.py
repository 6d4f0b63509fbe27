"""Unprivileged confinement layers: descriptors, environment, rlimits, Landlock and a seccomp filter.

None of these needs root or a namespace, so they hold on a TA's laptop and in a container that
refuses ``unshare`` (Docker's default seccomp profile). Kernel structures are written with
``ctypes``/``struct``: Landlock (linux/landlock.h) and classic BPF for seccomp (linux/filter.h).
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import struct

MAX_PROCESSES = 64  # a submission's own processes and threads at once
MIN_LANDLOCK_ABI = 6  # scoped signals and abstract unix sockets
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF, SYS_SECCOMP, SYS_CAPSET = 444, 445, 446, 317, 126
PR_SET_NO_NEW_PRIVS, PR_GET_SECCOMP = 38, 21
SAFE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "USER": "student"}


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def open_fds() -> list[int]:
    return [int(name) for name in os.listdir("/proc/self/fd")]


def close_fds(keep: set[int]) -> None:
    """Close every descriptor but ``keep`` and 0-2: nothing of the grader's processes stays reachable.

    A process forked by multiprocessing's server inherits the server's "alive" pipe and the resource
    tracker's pipe; with those a submission could stop the server or make the tracker unlink files.
    """
    for fd in open_fds():
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    from multiprocessing import resource_tracker

    resource_tracker._resource_tracker._fd = None  # its pipe is closed: never write to the number again
    resource_tracker._resource_tracker._pid = None


def clean_environment(workdir: str) -> None:
    """Replace the environment with an allowlist: nothing of the grader's variables reaches the notebook."""
    import tempfile

    os.environ.clear()
    os.environ.update(SAFE_ENV, HOME=workdir, TMPDIR=workdir, IPYTHONDIR=f"{workdir}/.ipython",
                      MPLCONFIGDIR=f"{workdir}/.matplotlib")
    tempfile.tempdir = workdir  # the server cached the grader's own temporary folder


def set_rlimits(address_space: int | None, file_mb: int = 64) -> None:
    """Cap this process (and everything it starts): address space, file size, core dumps."""
    if address_space:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb * 2**20, file_mb * 2**20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def limit_processes(own_namespace: bool) -> None:
    """Cap the number of processes: counted per user id (in our user namespace, or our own uid as root).

    Sharing the grader's user id outside a namespace, the count includes the user's other processes,
    so the cap is set that far above them.
    """
    extra = 0
    if not own_namespace and os.geteuid() != 0:
        import psutil

        uid = os.getuid()
        extra = sum(p.num_threads() for p in psutil.process_iter() if _uid_of(p) == uid)
    resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES + extra, MAX_PROCESSES + extra))


def _uid_of(p) -> int | None:
    try:
        return p.uids().real
    except Exception:
        return None


CAP_DAC_READ_SEARCH = 2


def drop_capabilities(uid: int | None = None, keep_reading: bool = False) -> None:
    """Give up every capability for good (not even a program run as uid 0 gets one back); as root, become
    ``uid`` first. ``keep_reading``: keep only CAP_DAC_READ_SEARCH, also across exec, for a Python installed
    where other users cannot read it (Landlock still decides what may be read)."""
    libc = _libc()
    keep = 1 << CAP_DAC_READ_SEARCH if keep_reading else 0
    for cap in range(64):
        if not keep >> cap & 1:
            libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP: past the last capability this fails, harmlessly
    libc.prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL
    if uid is not None:
        libc.prctl(8, 1, 0, 0, 0)  # PR_SET_KEEPCAPS: keep the permitted set across setuid
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    header = struct.pack("Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = struct.pack("IIIIII", keep, keep, keep, 0, 0, 0)  # effective, permitted, inheritable (low and high words)
    if libc.syscall(SYS_CAPSET, header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    if keep and libc.prctl(47, 2, CAP_DAC_READ_SEARCH, 0, 0) != 0:  # PR_CAP_AMBIENT_RAISE: kept across exec
        raise OSError(ctypes.get_errno(), "PR_CAP_AMBIENT_RAISE")
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 if none."""
    version = _libc().syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, 1)  # LANDLOCK_CREATE_RULESET_VERSION
    return max(version, 0)


def seccomp_available() -> bool:
    return _libc().prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0


# Landlock access rights (linux/landlock.h)
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1, 2, 4, 8
FS_ALL = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
FS_FILE_ONLY = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | (1 << 14) | (1 << 15)  # rights a rule on a file may hold
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1, 2
NET_ALL = 3  # bind and connect TCP


def restrict_filesystem(*, read: list[str], write: list[str]) -> None:
    """Landlock: read (and execute) only under ``read``, write only under ``write``; no TCP, no signals or
    abstract unix sockets beyond this process's own domain. Applies to this thread and all it starts."""
    abi = landlock_abi()
    if abi < MIN_LANDLOCK_ABI:
        raise OSError(errno.ENOSYS, f"Landlock ABI {abi} < {MIN_LANDLOCK_ABI}")
    fs_all = FS_ALL[min(abi, 5)]
    attr = struct.pack("QQQ", fs_all, NET_ALL, SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL)
    libc = _libc()
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, attr, len(attr), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    try:
        reading = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
        rules = [(p, reading) for p in read] + [(p, fs_all) for p in write] + [("/dev/null", FS_READ_FILE | FS_WRITE_FILE)]
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # not on this system (/lib32, /sys inside a minimal root)
            try:
                if not os.path.isdir(path):
                    access &= FS_FILE_ONLY
                rule = struct.pack("=Qi", access & fs_all, fd)  # landlock_path_beneath_attr is packed
                if libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, 1, rule, 0) != 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
            finally:
                os.close(fd)
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)


# seccomp: classic BPF over struct seccomp_data {int nr; u32 arch; u64 ip; u64 args[6]}
AUDIT_ARCH_X86_64, X32_BIT = 0xC000003E, 0x40000000
RET_ALLOW, RET_KILL_PROCESS, RET_ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
LD_ABS, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
NAMESPACE_FLAGS = 0x7E020000  # every CLONE_NEW* flag
DENIED = {  # x86_64 syscall numbers -> errno
    41: errno.EACCES,  # socket: no network, no unix socket to any grader process
    29: errno.EPERM, 64: errno.EPERM, 68: errno.EPERM,  # shmget, semget, msgget: SysV IPC outlives the run
    240: errno.EPERM,  # mq_open
    112: errno.EPERM,  # setsid: every process stays in the run's session, where it is killed
    272: errno.EPERM, 308: errno.EPERM,  # unshare, setns
    101: errno.EPERM, 310: errno.EPERM, 311: errno.EPERM,  # ptrace, process_vm_readv/writev
    425: errno.EPERM, 426: errno.EPERM, 427: errno.EPERM,  # io_uring: would bypass this filter
    321: errno.EPERM, 298: errno.EPERM, 323: errno.EPERM,  # bpf, perf_event_open, userfaultfd
    303: errno.EPERM, 304: errno.EPERM,  # name_to_handle_at, open_by_handle_at: file handles skip path checks
    435: errno.ENOSYS,  # clone3 (its flags are out of reach): glibc falls back to clone
}
SYS_CLONE = 56


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def seccomp_program() -> bytes:
    """The filter: kill another architecture, deny ``DENIED`` and clone into new namespaces, allow the rest."""
    prog = [_insn(LD_ABS, 4), _insn(JEQ, AUDIT_ARCH_X86_64, 1, 0), _insn(RET, RET_KILL_PROCESS),
            _insn(LD_ABS, 0), _insn(JGE, X32_BIT, 0, 1), _insn(RET, RET_ERRNO | errno.EPERM)]
    for nr, err in DENIED.items():
        prog += [_insn(JEQ, nr, 0, 1), _insn(RET, RET_ERRNO | err)]
    prog += [_insn(JEQ, SYS_CLONE, 0, 3), _insn(LD_ABS, 16), _insn(JSET, NAMESPACE_FLAGS, 0, 1),
             _insn(RET, RET_ERRNO | errno.EPERM), _insn(RET, RET_ALLOW)]
    return b"".join(prog)


def deny_syscalls(program: bytes | None = None) -> None:
    """Install the seccomp filter on every thread of this process (and all it starts)."""
    if os.uname().machine != "x86_64":
        raise OSError(errno.ENOSYS, "the seccomp filter is written for x86_64")
    program = program or seccomp_program()
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HxxxxxxQ", len(program) // 8, ctypes.addressof(buf))
    libc = _libc()
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if libc.syscall(SYS_SECCOMP, 1, 1, fprog) != 0:  # SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC
        raise OSError(ctypes.get_errno(), "seccomp")
