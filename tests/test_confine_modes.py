"""Confinement without namespaces: the Gradescope path with `unshare` denied falls back to Landlock and
seccomp, says so in results.json, and still keeps the hidden tests and the network out of reach."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from seccomp_filters import DENY_UNSHARE_EXEC
from test_hostile import Listener, hostile_notebook

ROOT = Path(__file__).resolve().parents[1]

# Probes the sandbox from inside: each working attack costs q1c.
ATTACKS = """
import glob, socket
broken = []
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).sendall(b"leak")
    broken.append("tcp")
except OSError:
    pass
for path in glob.glob("/tmp/hwkit-gs-*/source/tests/*.py") + glob.glob("/proc/*/cwd/source/tests/q1c.py"):
    try:
        open(path).read(1)
        broken.append(path)
    except OSError:
        pass
if broken:
    kl_divergence = None
"""


def run_without_unshare(args: list[str], landlock: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m hwkit ARGS`` under the filter of ``seccomp_filters`` (installed before exec)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT / "src")]))
    return subprocess.run([sys.executable, "-c", DENY_UNSHARE_EXEC, str(landlock), sys.executable, "-m", "hwkit", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_unshare_denied_is_really_denied():
    """Does the filter make unshare fail with EPERM (so the next test tests the fallback)?"""
    code = ("import ctypes, os; from hwkit.sandbox import lockdown; from seccomp_filters import deny_unshare_program; "
            "lockdown.deny_syscalls(deny_unshare_program()); libc = ctypes.CDLL(None, use_errno=True); "
            "print(libc.unshare(0x40000000), ctypes.get_errno())")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT / "src")]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["-1", str(errno.EPERM)]


@pytest.mark.slow
def test_gradescope_without_namespaces_confines_by_landlock(dist, tmp_path):
    """With unshare denied, is the notebook graded in Landlock mode, results.json saying so, attacks blocked?"""
    listener = Listener()
    full_credit = nbformat.read(dist / "known" / "full-credit.ipynb", as_version=4)
    sub = tmp_path / "vae_hw.ipynb"
    sub.write_bytes(hostile_notebook(full_credit, ATTACKS.replace("{port}", str(listener.tcp.getsockname()[1])), whole=True))
    proc = run_without_unshare(["gradescope-check", str(sub), "-o", str(tmp_path / "gs"),
                                "--autograder", str(dist / "vae_hw-autograder.zip")])
    listener.close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "gs" / "results.json").read_text())
    assert results["extra_data"]["confinement"] == "landlock", results.get("extra_data")
    assert results["score"] == 18, results["output"]
    assert listener.received == b""


@pytest.mark.slow
def test_no_confinement_at_all_refuses_without_insecure(dist, tmp_path):
    """Without namespaces and without Landlock, does grade refuse in one line naming what is unprotected,
    and grade, saying `confinement: none`, only with --insecure?"""
    args = ["grade", str(dist / "known" / "blank.ipynb"), "-o", str(tmp_path / "out"),
            "--autograder", str(dist / "vae_hw-autograder.zip")]
    refused = run_without_unshare(args, landlock=False)
    assert refused.returncode == 2
    line = refused.stderr.strip().splitlines()[-1]
    assert line.startswith("hwkit: error: cannot confine submissions here") and "--insecure" in line
    assert "hidden tests" in line and "network" in line
    assert not (tmp_path / "out" / "gradebook.csv").exists()
    graded = run_without_unshare([*args, "--insecure"], landlock=False)
    assert graded.returncode == 0, graded.stderr[-2000:]
    assert "confinement: none" in graded.stdout
