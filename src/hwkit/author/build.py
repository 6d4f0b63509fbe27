"""`hwkit assign`: run otter assign on the master notebook and lay out dist/ at stable paths."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from hwkit.errors import UsageError
from hwkit.author.lint import check_notebook
from hwkit.author.lists import fill_answer_key, fill_built_notebook
from hwkit.author.questions import QUESTIONS_JSON, Question, questions_json, read_master
from hwkit.written.handouts import TEMPLATE_NAME, build_written

ZIP_NAME = "vae_hw-autograder.zip"


# From otter's zip we keep the hidden tests, the data and the config (so `otter run -a` still works);
# Gradescope runs our own run_autograder, set up by our own lean setup.sh.
KEEP_FROM_OTTER = ("tests/", "files/", "otter_config.json")
OURS = ("setup.sh", "run_autograder", "requirements.txt")
# The autograder's own data (otter's autograder_files): in the zip's files/, never in a student's folder.
GRADER_ONLY = ("data/heldout.npz",)
SECRET = "secret.key"  # per build: the key from which each submission's hidden inputs are drawn


def repack_autograder(otter_zip: Path, target: Path, *, autograder_dir: Path, questions: list[Question]) -> None:
    """Write the Gradescope zip: otter's tests and data, our runner, the questions and the hwkit package."""
    package = Path(__file__).resolve().parent.parent  # the hwkit package
    with zipfile.ZipFile(otter_zip) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename.startswith(KEEP_FROM_OTTER):
                dst.writestr(info, src.read(info))
        for name in OURS:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if name != "requirements.txt" else 0o644) << 16
            dst.writestr(info, (autograder_dir / name).read_bytes(), zipfile.ZIP_DEFLATED)
        dst.writestr(zipfile.ZipInfo(SECRET, date_time=(2024, 1, 1, 0, 0, 0)), secrets.token_bytes(32))
        dst.writestr(zipfile.ZipInfo(QUESTIONS_JSON, date_time=(2024, 1, 1, 0, 0, 0)), questions_json(questions),
                     zipfile.ZIP_DEFLATED)
        for path in sorted(package.rglob("*")):
            if path.suffix in (".py", ".json") and "__pycache__" not in path.parts:
                dst.write(path, f"hwkit/{path.relative_to(package).as_posix()}")


OTTER_ZIP_NAME = "otter-autograder.zip"
TORCH_CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def otter_zip_with_cpu_torch(otter_zip: Path, target: Path, questions: list[Question]) -> None:
    """otter's own zip (its image, its runner), for `grade --docker`; torch from the CPU index; the questions."""
    with zipfile.ZipFile(otter_zip) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "requirements.txt":
                data = f"{TORCH_CPU_INDEX}\n".encode() + data
            elif info.filename == "environment.yml":
                data = data.replace(b"  - pip:\n", f"  - pip:\n      - {TORCH_CPU_INDEX}\n".encode(), 1)
            dst.writestr(info, data)
        dst.writestr(zipfile.ZipInfo(QUESTIONS_JSON, date_time=(2024, 1, 1, 0, 0, 0)), questions_json(questions),
                     zipfile.ZIP_DEFLATED)


def build_assignment(*, master: Path, dist: Path, solutions: Path) -> dict[str, Path]:
    """Build the student notebook, autograder notebook and zip, and solutions into ``dist``.

    The questions (ids, kinds, points, prompts) are read from ``master`` and written to ``questions.json``
    in ``dist`` and in the zip. ``otter assign`` runs every test against the solutions; a failing test
    fails the build. Returns the stable paths of what was built.
    """
    if not master.is_file():
        raise UsageError(f"master notebook not found: {master}")
    questions = read_master(master)
    violations = check_notebook(master)
    if violations:
        raise UsageError(f"{master}: {len(violations)} test(s) break the test contract (see README, Editing the homework): "
                         + "; ".join(map(str, violations)))
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
        for notebook in (out / "student" / master.name, out / "autograder" / master.name):
            fill_built_notebook(notebook, questions)
        staged = Path(tmp) / "dist"
        shutil.copytree(out / "student", staged / "student")
        shutil.copytree(out / "autograder", staged / "autograder", ignore=shutil.ignore_patterns("*.zip"))
        repack_autograder(zips[0], staged / ZIP_NAME, autograder_dir=master.parent.parent / "autograder",
                          questions=questions)
        otter_zip_with_cpu_torch(zips[0], staged / "autograder" / OTTER_ZIP_NAME, questions)
        (staged / QUESTIONS_JSON).write_text(questions_json(questions), encoding="utf-8")
        shutil.copytree(solutions, staged / "solutions", ignore=shutil.ignore_patterns("__pycache__"))
        answer_key = staged / "solutions" / "README.md"
        if answer_key.is_file():
            answer_key.write_text(fill_answer_key(answer_key.read_text(encoding="utf-8"), questions, keep_marks=False),
                                  encoding="utf-8")
        shutil.copy2(out / "autograder" / master.name, staged / "solutions" / master.name)
        build_written(staged, assignment_dir=master.parent, questions=questions)
        # Replace the previous build only once the new one is complete.
        for name in ("student", "autograder", "solutions", ZIP_NAME, TEMPLATE_NAME, QUESTIONS_JSON):
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
        "template": dist / TEMPLATE_NAME,
        "questions": dist / QUESTIONS_JSON,
    }
