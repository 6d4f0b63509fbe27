"""`hwkit grade --docker`: hand the batch to otter's own `otter grade` where a Docker engine runs."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

from hwkit.errors import UsageError
from hwkit.report.gradebook import Gradebook
from hwkit.author.questions import question_points


def docker_available() -> bool:
    """Does a Docker engine answer? (The client alone is not enough.)"""
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def grade_with_docker(paths: list[Path], *, out: Path, otter_zip: Path, jobs: int, timeout: float) -> list[dict[str, str]]:
    """Run ``otter grade`` (one container per submission) and turn its final_grades.csv into our gradebook."""
    if not docker_available():
        raise UsageError("--docker needs a running Docker engine, and none answered `docker info`")
    if not otter_zip.is_file():
        raise UsageError(f"otter's autograder zip not found: {otter_zip} (run `make assign` first)")
    from otter.grade import main as otter_grade

    from hwkit.grade.grading import assignment_name

    out.mkdir(parents=True, exist_ok=True)
    otter_grade(name=assignment_name(otter_zip), paths=[str(p) for p in paths], output_dir=str(out), autograder=str(otter_zip),
                containers=jobs, ext="ipynb", timeout=int(timeout))
    points = question_points(otter_zip)
    book = Gradebook(out / "gradebook.csv", list(points), force=True)
    with open(out / "final_grades.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row.get("file") in (None, "", "Points Possible"):
                continue
            scores = {q: float(row.get(q) or 0) for q in points}
            status = "ok" if row.get("grading_status", "Completed") == "Completed" else row["grading_status"]
            book.add(Path(row["file"]).name, scores, sum(points.values()), status)
    return list(book.rows.values())
