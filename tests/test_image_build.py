"""The Gradescope image, built for real: setup.sh on a bare Debian 12, then run_autograder inside it.

Needs root and debootstrap (skips otherwise). The clean root is made with ``debootstrap --variant=minbase``
(cached for the day as a tarball under HWKIT_IMAGE_CACHE, default /var/cache/hwkit-image-test; ``off``
disables the cache). Packages come from the registries (Debian's mirror for apt, PyPI for pip); the pinned
CPU torch wheel comes from a local wheel directory (HWKIT_WHEELS, default /opt/wheels) standing in for
PyTorch's CPU index, or from that index itself when no such wheel is found.

Every command in the root runs in private mount and PID namespaces (``unshare``), as in a container: /, /proc,
/dev and /sys are mounted there and vanish with the namespace, so nothing stays mounted on the host even if
the test is killed, and the grader inside sees (and can kill) only its own processes.
Measurements go to stdout (``pytest -s``) and to dist/image-build.txt.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from hwkit.grade.results import question_scores

pytestmark = [
    pytest.mark.slow,
    pytest.mark.image,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds a Debian root with debootstrap and chroot: needs root"),
    pytest.mark.skipif(shutil.which("debootstrap") is None,
                       reason="debootstrap is not installed (apt-get install -y debootstrap)"),
]

SUITE = "bookworm"  # Debian 12, one of the two bases setup.sh supports
MIRROR = os.environ.get("HWKIT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = os.environ.get("HWKIT_DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
CACHE = os.environ.get("HWKIT_IMAGE_CACHE", "/var/cache/hwkit-image-test")
WHEELS = Path(os.environ.get("HWKIT_WHEELS", "/opt/wheels"))
ROUTE = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
         "PIP_INDEX_URL", "PIP_DEFAULT_TIMEOUT")  # how the host reaches the registries, passed on unchanged

# Runs as PID 1 of fresh mount and PID namespaces. The bind of the root onto itself makes / a mount
# point, as it is in a container; the grader's sandbox needs that to make its mounts private.
ENTER = """set -e
root=$1; shift
mount --bind "$root" "$root"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
chroot "$root" "$@"
"""


def _run(cmd: list[str], *, log: Path, env: dict[str, str], timeout: float) -> tuple[int, float]:
    """Run ``cmd`` with its output in ``log``; kill its whole process group if it runs past ``timeout``."""
    start = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            out.write(f"\n[test] killed after {timeout:g} s\n".encode())
            code = -9
    return code, time.monotonic() - start


def _in_root(root: Path, cmd: list[str], *, log: Path, env: dict[str, str], timeout: float) -> tuple[int, float]:
    """Run ``cmd`` chrooted into ``root``, in its own mount and PID namespaces (killed with it on timeout)."""
    wrapper = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
               "sh", "-c", ENTER, "enter", str(root), *cmd]
    return _run(wrapper, log=log, env=env, timeout=timeout)


def _tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _mounts_under(root: Path) -> list[str]:
    """Mount points of this (host) namespace at or below ``root``, deepest first."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        if point == str(root) or point.startswith(f"{root}/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def _unmount_all(root: Path) -> list[str]:
    """Unmount whatever is still mounted under ``root`` (lazily if busy); return what remains."""
    for point in _mounts_under(root):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)
    return _mounts_under(root)


def _size(path: Path) -> tuple[int, int]:
    """(bytes, files) of the regular files under ``path``, hard links counted once, symlinks not followed."""
    seen, total = set(), 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_mode & 0o170000) == 0o100000 and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total, len(seen)


def _downloaded(log_text: str) -> tuple[float, float]:
    """(apt MB, pip MB) fetched from the registries, from apt's 'Need to get' and pip's 'Downloading' lines."""
    unit = {"B": 1e-6, "kB": 1e-3, "KB": 1e-3, "MB": 1.0, "GB": 1e3}
    apt = sum(float(n.replace(",", "")) * unit[u]
              for n, u in re.findall(r"^Need to get ([0-9.,]+) (B|kB|MB|GB)", log_text, flags=re.M))
    pip = sum(float(n) * unit[u]
              for n, u in re.findall(r"^\s*Downloading \S+ \(([0-9.]+) (kB|KB|MB|GB)\)", log_text, flags=re.M))
    return apt, pip


def _base_root(root: Path, logs: Path) -> str:
    """Fill ``root`` with a bare Debian (minbase) whose apt sees the host's mirrors; say where it came from."""
    key = f"{SUITE}-minbase-{datetime.date.today().isoformat()}"
    cached = Path(CACHE) / f"{key}.tar" if CACHE != "off" else None
    env = {k: v for k, v in os.environ.items() if k in ROUTE or k == "PATH"}
    if cached and cached.is_file():
        code, seconds = _run(["tar", "-C", str(root), "--numeric-owner", "-xpf", str(cached)],
                             log=logs / "base.log", env=env, timeout=600)
        assert code == 0, f"unpacking {cached} failed:\n{_tail(logs / 'base.log')}"
        return f"restored from {cached} in {seconds:.0f} s"
    code, seconds = _run(["debootstrap", "--variant=minbase", SUITE, str(root), MIRROR],
                         log=logs / "base.log", env=env, timeout=1800)
    assert code == 0, f"debootstrap failed (exit {code}):\n{_tail(logs / 'base.log')}"
    # Like Debian's own container image: the release, its updates and its security archive.
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(
        f"Types: deb\nURIs: {MIRROR}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: {SECURITY_MIRROR}\nSuites: {SUITE}-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    fetched, _ = _size(root / "var/cache/apt/archives")  # the .debs debootstrap downloaded
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True)
    if cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".tar.{os.getpid()}")
        if _run(["tar", "-C", str(root), "--numeric-owner", "-cpf", str(partial), "."],
                log=logs / "base.log", env=env, timeout=600)[0] == 0:
            partial.replace(cached)
            for old in cached.parent.glob(f"{SUITE}-minbase-*.tar"):
                if old != cached:
                    old.unlink()
        partial.unlink(missing_ok=True)
    return f"debootstrap --variant=minbase {SUITE} from {MIRROR}: {seconds:.0f} s, {fetched / 1e6:.0f} MB of packages"


def _registries(root: Path, env: dict[str, str], requirements: str) -> tuple[dict[str, str], str]:
    """setup.sh's environment: pip trusting what the host trusts, torch from a local wheel if there is one.

    This machine's egress re-signs TLS with its own CA, so the host's CA bundle is copied in for pip.
    The pinned torch wheel, found in WHEELS, stands in for PyTorch's CPU index (TORCH_INDEX="" skips it).
    """
    setup_env = dict(env)
    bundle = next((Path(os.environ[k]) for k in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
                   if os.path.isfile(os.environ.get(k, ""))), Path("/etc/ssl/certs/ca-certificates.crt"))
    if bundle.is_file():
        shutil.copy2(bundle, root / "host-ca-bundle.pem")
        setup_env["PIP_CERT"] = "/host-ca-bundle.pem"
    pin = re.search(r"^torch==(\S+)", requirements, flags=re.M).group(1)
    wheels = sorted(WHEELS.glob(f"torch-{pin}-cp311-*.whl"))
    if not wheels:
        return setup_env, f"PyTorch's CPU index (no torch-{pin} wheel in {WHEELS})"
    (root / "wheels").mkdir()
    shutil.copy2(wheels[0], root / "wheels")
    setup_env |= {"TORCH_INDEX": "", "PIP_FIND_LINKS": "/wheels"}
    return setup_env, f"{wheels[0]} ({wheels[0].stat().st_size / 1e6:.0f} MB), in PyTorch's CPU index's stead"


def _unzip(autograder_zip: Path, target: Path) -> None:
    """Unpack the zip as unzip does, keeping the modes it stores (run_autograder must stay executable)."""
    with zipfile.ZipFile(autograder_zip) as zf:
        for info in zf.infolist():
            path = Path(zf.extract(info, target))
            mode = (info.external_attr >> 16) & 0o7777
            if mode and not info.is_dir():
                path.chmod(mode)


def test_setup_sh_builds_an_image_that_grades(dist, autograder_zip, points, tmp_path):
    """On a bare Debian 12, does the zip's setup.sh install everything, and does its run_autograder then give
    the full-credit notebook every point and the blank notebook none?"""
    started = time.monotonic()
    logs = tmp_path / "logs"
    logs.mkdir()
    # Snapshot the inputs: dist/ may be rebuilt while this test runs.
    zip_copy = shutil.copy2(autograder_zip, tmp_path / autograder_zip.name)
    notebooks = {name: (dist / "known" / f"{name}.ipynb").read_bytes() for name in ("full-credit", "blank")}
    root = tmp_path / "root"
    root.mkdir()
    report = [f"image build test, {datetime.datetime.now().isoformat(timespec='seconds')}"]

    def note(line: str) -> None:
        print(f"[image] {line}", flush=True)
        report.append(line)

    try:
        note(f"base: {_base_root(root, logs)}")
        base_bytes, _ = _size(root)
        shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
        ag = root / "autograder"
        for part in ("source", "submission", "results"):
            (ag / part).mkdir(parents=True)
        _unzip(Path(zip_copy), ag / "source")

        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
               "LANG": "C.UTF-8"}
        env |= {k: v for k, v in os.environ.items() if k in ROUTE}
        setup_env, torch_from = _registries(root, env, (ag / "source/requirements.txt").read_text())
        code, setup_seconds = _in_root(root, ["/usr/bin/env", "-C", "/autograder/source", "bash",
                                              "/autograder/source/setup.sh"],
                                       log=logs / "setup.log", env=setup_env, timeout=3600)
        assert code == 0, f"setup.sh failed (exit {code}); {logs / 'setup.log'}:\n{_tail(logs / 'setup.log')}"
        # The stand-ins for the registries' route and PyTorch's index are not part of the image.
        shutil.rmtree(root / "wheels", ignore_errors=True)
        (root / "host-ca-bundle.pem").unlink(missing_ok=True)
        venv_bytes, venv_files = _size(root / "opt/hwkit")
        apt_mb, pip_mb = _downloaded((logs / "setup.log").read_text(errors="replace"))
        note(f"setup.sh: {setup_seconds:.0f} s")
        note(f"/opt/hwkit: {venv_bytes / 1e6:.0f} MB in {venv_files} files; "
             f"the image grew by {(_size(root)[0] - base_bytes) / 1e6:.0f} MB")
        note(f"downloaded by setup.sh: apt {apt_mb:.0f} MB, pip {pip_mb:.0f} MB from PyPI; torch from {torch_from}")

        # Gradescope copies run_autograder to /autograder and runs it there, once per submission.
        shutil.copy2(ag / "source/run_autograder", ag / "run_autograder")
        expected = {"full-credit": sum(points.values()), "blank": 0.0}
        for name, raw in notebooks.items():
            for part in ("submission", "results"):
                shutil.rmtree(ag / part)
                (ag / part).mkdir()
            (ag / "submission/vae_hw.ipynb").write_bytes(raw)
            log = logs / f"run_autograder-{name}.log"
            code, seconds = _in_root(root, ["/autograder/run_autograder"], log=log, env=env, timeout=900)
            results_path = ag / "results/results.json"
            assert results_path.is_file(), f"no results.json for {name} (exit {code}):\n{_tail(log)}"
            results = json.loads(results_path.read_text())
            shutil.copy2(results_path, logs / f"results-{name}.json")
            note(f"run_autograder on {name}: {results['score']:g} / {expected['full-credit']:g} "
                 f"in {seconds:.0f} s (exit {code})")
            assert results["score"] == expected[name], f"{name}: {results.get('output', '')}\n{_tail(log)}"
            if name == "full-credit":
                assert question_scores(results) == points, results.get("output", "")
    finally:
        left = _unmount_all(root)
        if not left and not os.environ.get("HWKIT_KEEP_IMAGE"):
            shutil.rmtree(root, ignore_errors=True)
        note(f"total: {time.monotonic() - started:.0f} s; logs in {logs}")
        (dist / "image-build.txt").write_text("\n".join(report) + "\n")
    assert not left, f"still mounted after the test (not deleted): {left}"
