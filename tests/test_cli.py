"""Bad input to the command line gets one clear line and exit code 2; bad files get a status row."""

from __future__ import annotations

import csv
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hwkit.grade.batch import safe_name


def hwkit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwkit", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("make_input, message", [
    (lambda d: d / "missing", "no such file or folder"),
    (lambda d: d, "no .ipynb or .zip submissions found"),
    (lambda d: (d / "essay.txt").write_text("hello") and d / "essay.txt", "not a notebook or zip submission"),
])
def test_bad_paths_get_one_line_and_exit_2(tmp_path, autograder_zip, make_input, message):
    """Does a missing path, an empty folder or a non-notebook file get one error line and exit code 2?"""
    target = make_input(tmp_path)
    proc = hwkit("grade", str(target), "-o", str(tmp_path / "out"), "--autograder", str(autograder_zip))
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_invalid_jobs_and_missing_zip_exit_2(tmp_path, autograder_zip):
    """Do an invalid --jobs and a missing autograder zip get one error line and exit code 2?"""
    (tmp_path / "a.ipynb").write_text("{}")
    proc = hwkit("grade", str(tmp_path), "-o", str(tmp_path / "out"), "--jobs", "0", "--autograder", str(autograder_zip))
    assert proc.returncode == 2 and "--jobs" in proc.stderr and "Traceback" not in proc.stderr
    proc = hwkit("grade", str(tmp_path), "-o", str(tmp_path / "out"), "--autograder", str(tmp_path / "nope.zip"))
    assert proc.returncode == 2 and "autograder zip not found" in proc.stderr
    (tmp_path / "broken-autograder.zip").write_bytes(b"PK\x03\x04 truncated")
    proc = hwkit("grade", str(tmp_path / "a.ipynb"), "-o", str(tmp_path / "out"), "--autograder", str(tmp_path / "broken-autograder.zip"))
    assert proc.returncode == 2 and "not a readable autograder zip" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_bad_files_in_a_folder_each_get_a_row(tmp_path, autograder_zip, points):
    """Do corrupted, empty, non-notebook and unreadable-zip submissions each get a row and a clear status?"""
    subs = tmp_path / "subs"
    (subs / "nested dir ü").mkdir(parents=True)
    (subs / "corrupt.ipynb").write_text('{"cells": [')
    (subs / "empty.ipynb").write_text("")
    (subs / "nested dir ü" / "not a notebook.ipynb").write_text('{"hello": "world"}')
    (subs / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with zipfile.ZipFile(subs / "no-notebook.zip", "w") as zf:
        zf.writestr("answers.txt", "42")
    (subs / "defines nothing.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    proc = hwkit("grade", str(subs), "-o", str(tmp_path / "out"), "--autograder", str(autograder_zip))
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "out" / "gradebook.csv", newline="") as f:
        rows = {r["submission"]: r for r in csv.DictReader(f)}
    assert {k: r["status"] for k, r in rows.items()} == {
        "corrupt.ipynb": "invalid notebook JSON",
        "empty.ipynb": "empty file",
        "nested dir ü/not a notebook.ipynb": "not a notebook",
        "broken.zip": "unreadable zip",
        "no-notebook.zip": "no notebook in zip",
        "defines nothing.ipynb": "ok",
    }
    for row in rows.values():
        assert row["total"] == "0" and all(row[q] == "0" for q in points) and row["possible"] == "18"
    assert (tmp_path / "out" / "feedback" / safe_name("corrupt.ipynb") / "feedback.txt").read_text().startswith("Submission: corrupt.ipynb")


def test_help_lists_commands():
    """Does --help describe the commands without doing any work?"""
    proc = hwkit("--help")
    assert proc.returncode == 0 and all(c in proc.stdout for c in ("assign", "known", "grade"))


def test_docker_without_an_engine_is_one_line_and_exit_2(tmp_path, autograder_zip):
    """Does --docker on a machine with no Docker engine say so in one line, with exit code 2?"""
    from hwkit.platforms.docker import docker_available

    if docker_available():
        pytest.skip("a Docker engine answers here")
    (tmp_path / "a.ipynb").write_text("{}")
    proc = hwkit("grade", str(tmp_path), "-o", str(tmp_path / "out"), "--docker", "--autograder", str(autograder_zip))
    assert proc.returncode == 2 and "Docker engine" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
