"""The smoke grade of `make check`: the full-credit and blank notebooks through `hwkit grade` (the fork engine)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_full_credit_scores_everything_and_blank_nothing(dist: Path, points, tmp_path):
    """Does the command a TA runs give the full-credit notebook every auto-graded point and the blank one none?"""
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("full-credit.ipynb", "blank.ipynb"):
        shutil.copyfile(dist / "known" / name, subs / name)
    done = subprocess.run([sys.executable, "-m", "hwkit", "grade", str(subs), "-o", str(tmp_path / "out"), "--jobs", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(tmp_path / "out" / "gradebook.csv", newline="", encoding="utf-8") as f:
        rows = {row["submission"]: row for row in csv.DictReader(f)}
    full, blank = rows["full-credit.ipynb"], rows["blank.ipynb"]
    assert full["status"] == "ok" and {q: float(full[q]) for q in points} == points
    assert blank["status"] == "ok" and all(float(blank[q]) == 0 for q in points)
