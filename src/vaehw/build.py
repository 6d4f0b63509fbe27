"""`vaehw assign`: run otter assign on the master notebook and lay out dist/ at stable paths."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import UsageError

ZIP_NAME = "vae_hw-autograder.zip"


def build_assignment(*, master: Path, dist: Path, solutions: Path) -> dict[str, Path]:
    """Build the student notebook, autograder notebook and zip, and solutions into ``dist``.

    ``otter assign`` runs every test against the solutions; a failing test fails the build.
    Returns the stable paths of what was built.
    """
    if not master.is_file():
        raise UsageError(f"master notebook not found: {master}")
    dist.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dist, prefix=".assign-") as tmp:
        out = Path(tmp) / "out"
        proc = subprocess.run(
            [sys.executable, "-m", "otter", "assign", str(master), str(out)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-6000:] + proc.stderr[-6000:])
            raise UsageError("otter assign failed (see its output above): a test fails on the solutions")
        zips = sorted((out / "autograder").glob("*-autograder_*.zip"))
        if len(zips) != 1:
            raise UsageError(f"expected one autograder zip from otter assign, found {len(zips)}")
        staged = Path(tmp) / "dist"
        shutil.copytree(out / "student", staged / "student")
        shutil.copytree(out / "autograder", staged / "autograder", ignore=shutil.ignore_patterns("*.zip"))
        shutil.copy2(zips[0], staged / ZIP_NAME)  # the timestamped name becomes a stable one
        shutil.copytree(solutions, staged / "solutions", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(out / "autograder" / master.name, staged / "solutions" / master.name)
        # Replace the previous build only once the new one is complete.
        for name in ("student", "autograder", "solutions", ZIP_NAME):
            target = dist / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            (staged / name).rename(target)
    return {
        "student": dist / "student" / master.name,
        "autograder": dist / "autograder" / master.name,
        "zip": dist / ZIP_NAME,
        "solutions": dist / "solutions",
    }
