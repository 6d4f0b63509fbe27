"""One bad submission never costs anyone else anything (tests/hostile/cases.yaml).

Each batch grades some hostile files with three normal submissions through `python -m hwkit grade
--jobs 2` in a process of its own: every file must get exactly one row, the normal ones their usual
scores, and nothing of any run may remain (processes, SysV IPC, /dev/shm entries, files in the shared
folders, the grader's temporary folders); the grader's processes stay under 1 GB. Cases written with
a `cell` report a working attack by losing q1c. The same batches run with the grader started as an
unprivileged user when the machine allows it (see test_hostile_user.py).
"""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import nbformat
import pytest
import yaml

from hostile_files import BUILDERS
from seccomp_filters import DENY_UNSHARE_EXEC

ROOT = Path(__file__).resolve().parents[1]
CASES = yaml.safe_load((Path(__file__).parent / "hostile" / "cases.yaml").read_text())
# the three normal submissions: name -> (known submission, its total as solutions/known_submissions.yaml says)
NORMAL = {"alice_smith.ipynb": ("full-credit", 18.0), "normal-2.ipynb": ("full-credit", 18.0),
          "normal-3.ipynb": ("q3b-missing-half", 16.5)}
DETACHED_WAIT = 25  # seconds to watch gradebook.csv after the grader exits (the issue says a minute; the
                    # corpus's detached writer fires 20 s after its cell runs, so 25 s covers it)
PEAK_MB = 1024
# Runs the grader, adopts and reaps every process it leaves (the server, the verdict processes, anything a
# submission left), then prints the largest resident size any of them reached and whether one outlived it.
PEAK_WRAPPER = """
import ctypes, os, resource, subprocess, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
code = subprocess.run(sys.argv[1:]).returncode
deadline, survivors = time.monotonic() + 30, False
while True:
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break
    if pid == 0:
        if time.monotonic() > deadline:
            survivors = True  # a process of the grader's tree outlived it by 30 s
            break
        time.sleep(0.1)
print('PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, 'SURVIVORS', survivors, file=sys.stderr)
sys.exit(code)
"""


class Listener:
    """A TCP listener on the host's loopback and one on an abstract unix socket; records what arrives."""

    def __init__(self):
        self.received = b""
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.abstract = f"hwkit-hostile-{uuid.uuid4().hex[:8]}"
        self.unix.bind("\0" + self.abstract)
        self.unix.listen()
        for s in (self.tcp, self.unix):
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.received += conn.recv(4096) or b"(connected)"
                except OSError:
                    self.received += b"(connected)"

    def close(self) -> None:
        self.tcp.close()
        self.unix.close()


def hostile_notebook(full_credit: nbformat.NotebookNode, code: str, before: str = 'grader.check("q1c")',
                     whole: bool = False) -> bytes:
    """The full-credit notebook with ``code`` in a new cell just before the cell containing ``before``; unless
    ``whole``, the notebook ends with that cell (the questions after it are not needed, and cost time)."""
    nb = nbformat.from_dict(full_credit)
    index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and before in c.source)
    nb.cells.insert(index, nbformat.v4.new_code_cell(code))
    if not whole:
        nb.cells = nb.cells[:index + 2]
    return nbformat.writes(nb).encode()


def snapshot(marker: str) -> dict[str, set[str]]:
    """What the machine holds that a run could leave behind."""
    ipc = set()
    for kind in ("shm", "sem", "msg"):
        lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
        ipc |= {f"{kind} {line.split()[0]}" for line in lines if line.split()[0] == str(int(marker[-6:], 16))}
    procs = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes() or \
                    b"sleep(600)" in Path(f"/proc/{pid}/cmdline").read_bytes():
                procs.add(pid)
        except OSError:
            continue
    shared = {str(p) for folder in ("/tmp", "/dev/shm", "/var/tmp") for p in Path(folder).glob(f"*{marker}*")}
    # Only what bears this batch's marker: other graders may be running on the same machine.
    return {"ipc": ipc, "processes": procs, "shared files": shared}


def run_batch(cases: list[dict], dist: Path, tmp: Path, *, user: str | None = None, env_python: list[str] | None = None,
              deny_unshare: bool = False):
    """Grade the batch; return rows by name, the grader's output, the peak RSS (MB) and what it left.

    ``user``: run the grader as this user; ``deny_unshare``: under a seccomp filter refusing namespaces."""
    full_credit = nbformat.read(dist / "known" / "full-credit.ipynb", as_version=4)
    marker = f"hostile{uuid.uuid4().hex[:8]}"
    subs, out = tmp / "subs", tmp / "out"
    for d in (subs, out):
        d.mkdir(parents=True)
    # the grader's TMPDIR, private to this batch; under /tmp, as usual, so that a run's own user id can reach it
    private_tmp = Path(tempfile.mkdtemp(prefix="hwkit-hostile-tmp-", dir="/tmp"))
    os.chmod(private_tmp, 0o755)
    listener = Listener()
    fields = dict(port=listener.tcp.getsockname()[1], abstract=listener.abstract, out=str(out),
                  key=int(marker[-6:], 16), marker=marker)
    files: dict[str, Path] = {}
    for case in cases:
        if "cell" in case:
            code = case["cell"]
            for k, v in fields.items():
                code = code.replace("{" + k + "}", str(v))
            path = subs / f"{case['name']}.ipynb"
            path.write_bytes(hostile_notebook(full_credit, code, case.get("before", 'grader.check("q1c")')))
        else:
            path = BUILDERS[case["file"]](subs, dist)
        files[case["name"]] = path
    for name, (known, _) in NORMAL.items():
        (subs / name).write_bytes((dist / "known" / f"{known}.ipynb").read_bytes())
    victim = Path("/dev/shm") / marker  # a root-owned file the resource tracker must not be made to unlink
    victim.write_text("keep")
    before = snapshot(marker)
    python = env_python or [sys.executable]
    cmd = [*python, "-c", PEAK_WRAPPER, *([*python, "-c", DENY_UNSHARE_EXEC, "True"] if deny_unshare else []),
           *python, "-m", "hwkit", "grade", str(subs), "-o", str(out), "--jobs", "2",
           "--autograder", str(dist / "vae_hw-autograder.zip"), "--timeout", "240", "--memory-mb", "700"]
    env = dict(os.environ, TMPDIR=str(private_tmp),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")])))
    if user:
        for d in (tmp, subs, out, private_tmp):
            subprocess.run(["chown", "-R", f"{user}:{user}", str(d)], check=True)
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--reset-env", "env",
               *(f"{k}={v}" for k, v in env.items() if k in ("TMPDIR", "PYTHONPATH", "PATH")), f"HOME={tmp}", *cmd]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=900)
    exited = time.monotonic()
    stdout, stderr = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    listener.close()
    if proc.returncode != 0 or "SURVIVORS False" not in stderr:
        shutil.rmtree(private_tmp, ignore_errors=True)
        victim.unlink(missing_ok=True)
    assert proc.returncode == 0, stderr[-3000:]
    assert "SURVIVORS False" in stderr, "a process of the batch outlived the grader by 30 s"
    peak = int(stderr.rsplit("PEAK", 1)[1].split()[0])
    time.sleep(1)
    after = snapshot(marker)
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return dict(rows=rows, stdout=stdout, stderr=stderr, peak=peak, before=before, after=after, out=out,
                victim=victim, marker=marker, listener=listener, private_tmp=private_tmp, files=files, exited=exited)


def check_batch(batch: dict, cases: list[dict], points: dict[str, float], mode: str) -> None:
    """Every assertion the issue asks of one batch; then the batch's own files outside pytest's folder go."""
    try:
        _check_batch(batch, cases, points, mode)
    finally:
        shutil.rmtree(batch["private_tmp"], ignore_errors=True)
        batch["victim"].unlink(missing_ok=True)


def _check_batch(batch: dict, cases: list[dict], points: dict[str, float], mode: str) -> None:
    rows, marker = batch["rows"], batch["marker"]
    assert len(rows) == len(cases) + len(NORMAL), [r["submission"] for r in rows]
    by_name = {r["submission"]: r for r in rows}
    for name, (_, total) in NORMAL.items():
        assert float(by_name[name]["total"]) == total and by_name[name]["status"] == "ok", by_name[name]
    for case in cases:
        name = next(n for n in by_name if n.startswith(case["name"]))
        row = by_name[name]
        if "status" in case:
            assert row["status"].startswith(case["status"]), (case["name"], row)
        if "kl_divergence = None" in case.get("cell", "") and mode in case.get("holds_in", ["namespaces", "landlock"]):
            assert float(row["q1c"]) == points["q1c"], f"attack {case['name']} worked: {row}"
        assert not any(ord(c) < 32 for c in row["status"]), row
    feedback = list((batch["out"] / "feedback").iterdir())
    assert len(feedback) == len(rows)  # one folder per submission, alice smith and alice_smith apart
    for folder in feedback:
        text = (folder / "feedback.txt").read_text(encoding="utf-8")
        assert sum(line.startswith("Total:") for line in text.splitlines()) == 1, text
        assert "\x1b" not in text
    assert "\x1b" not in batch["stdout"] and "\x1b" not in batch["stderr"]
    assert marker not in batch["stdout"] and marker not in batch["stderr"]  # no raw text, no forged warning
    assert f"confinement: {mode}" in batch["stdout"]
    assert batch["listener"].received == b"", batch["listener"].received
    assert batch["victim"].read_text() == "keep"
    batch["victim"].unlink()
    left = {k: batch["after"][k] - batch["before"][k] for k in batch["after"]}
    left["shared files"] -= {str(batch["victim"])}
    assert not any(left.values()), left
    left_tmp = [p for p in batch["private_tmp"].iterdir() if not p.name.startswith("torchinductor")]  # torch's cache is the server's
    assert not left_tmp  # the grader's own temporary folders are gone
    assert batch["peak"] < PEAK_MB, batch["peak"]
    book = batch["out"] / "gradebook.csv"
    content = book.read_bytes()
    if any(c["name"] == "rewrite-gradebook-later" for c in cases):
        time.sleep(max(0.0, DETACHED_WAIT - (time.monotonic() - batch["exited"])))
    assert book.read_bytes() == content and b"forged" not in content


def grader_mode(dist: Path) -> str:
    from hwkit.grade.executor import Executor

    with Executor(dist / "vae_hw-autograder.zip") as ex:
        return ex.mode


@pytest.fixture(scope="module")
def mode(dist) -> str:
    return grader_mode(dist)


@pytest.mark.slow
@pytest.mark.parametrize("number", sorted({c["batch"] for c in CASES}))
def test_hostile_batch_as_root_or_current_user(number, dist, points, mode, tmp_path):
    """Does each hostile file get a row of its own, while the others keep their scores and nothing remains?"""
    cases = [c for c in CASES if c["batch"] == number]
    check_batch(run_batch(cases, dist, tmp_path), cases, points, mode)


@pytest.mark.slow
def test_hostile_batch_without_namespaces(dist, points, tmp_path):
    """Where unshare is refused (Docker's default profile), do Landlock and seccomp hold the same line?
    (Batches 2 and 3 graded together, with the same three normal submissions.)"""
    cases = [c for c in CASES if c["batch"] in (2, 3)]
    check_batch(run_batch(cases, dist, tmp_path, deny_unshare=True), cases, points, "landlock")


def test_every_measured_attack_is_in_the_corpus():
    """Does the corpus hold one case per attack measured in the issue?"""
    names = {c["name"] for c in CASES}
    assert {"deep-folder", "surrogate-message", "nested-json", "encrypted-zip", "aes-zip", "corrupt-deflate-zip",
            "undecodable-name", "write-every-descriptor", "tcp-loopback", "abstract-unix-socket",
            "sysv-shared-memory", "process-table", "fork-many", "fill-the-disk", "zip-bomb", "control-characters",
            "fake-isolation-event", "alice smith", "read-hidden-tests", "rewrite-gradebook-later", "verdict-broadcast",
            "inherited-descriptors", "grader-environment"} <= names


USER = "hwkit-hostile-ta"


@pytest.fixture(scope="module")
def unprivileged_user() -> str:
    """A throwaway account (useradd) to run the grader as a TA would, without root."""
    if os.geteuid() != 0:
        pytest.skip("creating a throwaway user needs root")
    if subprocess.run(["id", USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", USER], check=True)
    return USER


@pytest.mark.slow
@pytest.mark.parametrize("numbers, deny_unshare", [((2, 3), False), ((3,), True)])
def test_hostile_batch_as_an_unprivileged_user(numbers, deny_unshare, dist, points, unprivileged_user, monkeypatch):
    """Started by an ordinary user: the hidden tests stay unreadable, gradebook.csv is left alone after the
    grader exits (watched DETACHED_WAIT seconds), and the rest holds as for root. (With namespaces, batches 2 and 3
    graded together, with the same three normal submissions.)"""
    python = "/usr/bin/python3.11"  # this venv's interpreter lives under /root, out of the user's reach
    if not Path(python).exists():
        pytest.skip("no system Python 3.11 for the unprivileged user")
    closed = [p for p in ROOT.parents if not os.stat(p).st_mode & 0o001]
    if closed:  # the user must reach the checkout (its src/ and .venv's packages) to run the grader at all
        pytest.skip(f"the checkout is inside {closed[0]}, which other users cannot enter")
    tmp = Path(tempfile.mkdtemp(prefix="hwkit-hostile-user-"))
    os.chmod(tmp, 0o755)
    site = next((ROOT / ".venv" / "lib").glob("python3*/site-packages"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(ROOT / "src")]))
    try:
        cases = [c for c in CASES if c["batch"] in numbers]
        batch = run_batch(cases, dist, tmp / "b", user=unprivileged_user, env_python=[python], deny_unshare=deny_unshare)
        check_batch(batch, cases, points, "landlock" if deny_unshare else "namespaces")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
