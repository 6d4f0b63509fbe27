"""A machine without namespaces, for tests: the seccomp filter of Docker's default profile, roughly."""

from __future__ import annotations

import errno

from hwkit.sandbox import lockdown

# Installs the filter, then runs argv[1:] under it: python -c DENY_UNSHARE_EXEC LANDLOCK program args...
DENY_UNSHARE_EXEC = ("import os, sys; from hwkit.sandbox import lockdown; from seccomp_filters import deny_unshare_program; "
                     "lockdown.deny_syscalls(deny_unshare_program(sys.argv[1] == 'True')); os.execv(sys.argv[2], sys.argv[2:])")


def deny_unshare_program(landlock: bool = True) -> bytes:
    """A seccomp filter as Docker's default profile has it without CAP_SYS_ADMIN: no unshare, no setns,
    no clone into new namespaces; with ``landlock=False``, a kernel without Landlock as well."""
    i = lockdown._insn
    prog = [i(lockdown.LD_ABS, 0)]
    for nr in (272, 308):  # unshare, setns
        prog += [i(lockdown.JEQ, nr, 0, 1), i(lockdown.RET, lockdown.RET_ERRNO | errno.EPERM)]
    for nr in () if landlock else (444, 445, 446):  # landlock_create_ruleset, _add_rule, _restrict_self
        prog += [i(lockdown.JEQ, nr, 0, 1), i(lockdown.RET, lockdown.RET_ERRNO | errno.ENOSYS)]
    prog += [i(lockdown.JEQ, 435, 0, 1), i(lockdown.RET, lockdown.RET_ERRNO | errno.ENOSYS),
             i(lockdown.JEQ, lockdown.SYS_CLONE, 0, 3), i(lockdown.LD_ABS, 16),
             i(lockdown.JSET, lockdown.NAMESPACE_FLAGS, 0, 1), i(lockdown.RET, lockdown.RET_ERRNO | errno.EPERM),
             i(lockdown.RET, lockdown.RET_ALLOW)]
    return b"".join(prog)
