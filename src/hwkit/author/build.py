"""`hwkit assign`: run otter assign on the master notebook and lay out dist/ at stable paths."""

from __future__ import annotations

import json
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
from hwkit.author.questions import (QUESTIONS_JSON, Question, check_name_references, master_config, master_name,
                                    master_title, open_master, questions_json, read_master)
from hwkit.written.handouts import build_written, template_name

ASSIGNMENT_JSON = "assignment.json"  # in dist/ and the zip: the title and the grader-only files
MARKER = ".hwkit-dist"  # in a build folder: what a build may replace or delete there is its own
TOOLKIT_AUTOGRADER = Path(__file__).resolve().parents[3] / "autograder"  # the checkout's Gradescope files


def zip_name(name: str) -> str:
    """The Gradescope zip of the assignment ``name``."""
    return f"{name}-autograder.zip"


def find_autograder(dist: Path) -> Path:
    """The one autograder zip built into ``dist``; UsageError if there is none, or several."""
    found = sorted(Path(dist).glob(zip_name("*")))
    if len(found) != 1:
        what = "no autograder zip" if not found else f"several autograder zips ({', '.join(p.name for p in found)})"
        raise UsageError(f"{what} in {dist}: build one with `make assign`")
    return found[0]


# From otter's zip we keep the hidden tests, the data and the config (so `otter run -a` still works);
# Gradescope runs our own run_autograder, set up by our own lean setup.sh.
KEEP_FROM_OTTER = ("tests/", "files/", "otter_config.json")
OURS = ("setup.sh", "run_autograder", "requirements.txt")
SECRET = "secret.key"  # per build: the key from which each submission's hidden inputs are drawn


def _entry(name: str, mode: int | None = None) -> zipfile.ZipInfo:
    """A zip entry dated 2024-01-01 whatever the day of the build, with Unix permissions ``mode`` if given."""
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    if mode is not None:
        info.external_attr = mode << 16
    return info


def repack_autograder(otter_zip: Path, target: Path, *, autograder_dir: Path, questions: list[Question],
                      about: str) -> None:
    """Write the Gradescope zip: otter's tests and data, our runner, the questions, ``about``
    (``assignment.json``) and the hwkit package."""
    package = Path(__file__).resolve().parent.parent  # the hwkit package
    with zipfile.ZipFile(otter_zip) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename.startswith(KEEP_FROM_OTTER):
                dst.writestr(info, src.read(info))
        for name in OURS:
            dst.writestr(_entry(name, 0o755 if name != "requirements.txt" else 0o644),
                         (autograder_dir / name).read_bytes(), zipfile.ZIP_DEFLATED)
        dst.writestr(_entry(SECRET), secrets.token_bytes(32))
        dst.writestr(_entry(QUESTIONS_JSON), questions_json(questions), zipfile.ZIP_DEFLATED)
        dst.writestr(_entry(ASSIGNMENT_JSON), about)
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
        dst.writestr(_entry(QUESTIONS_JSON), questions_json(questions), zipfile.ZIP_DEFLATED)


def claim_dist(dist: Path) -> None:
    """Make ``dist`` a build folder: a new or empty folder, or an earlier build's (its marker, or the
    ``questions.json`` of a build from before the marker); UsageError for any other, since a build replaces
    ``student/``, ``autograder/``, ``solutions/`` and ``known/`` there and deletes other builds' zips."""
    if dist.exists() and not (dist.is_dir() and ((dist / MARKER).exists() or (dist / QUESTIONS_JSON).is_file()
                                                 or not any(dist.iterdir()))):
        raise UsageError(f"{dist} is not a build folder (it holds other files and no {MARKER}): nothing built; "
                         "give DIST= a new folder or an earlier build's")
    dist.mkdir(parents=True, exist_ok=True)
    (dist / MARKER).touch()


def read_about(autograder: Path) -> dict:
    """``assignment.json`` of an autograder (its zip or its unpacked folder); empty if it has none."""
    try:
        if Path(autograder).is_dir():
            return json.loads((Path(autograder) / ASSIGNMENT_JSON).read_text(encoding="utf-8"))
        with zipfile.ZipFile(autograder) as zf:
            return json.loads(zf.read(ASSIGNMENT_JSON))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return {}


def build_assignment(*, master: Path, dist: Path, solutions: Path, autograder_dir: Path | None = None) -> dict[str, Path]:
    """Build the student notebook, autograder notebook and zip, and solutions into ``dist``.

    The questions (ids, kinds, points, prompts) are read from ``master`` and written to ``questions.json``
    in ``dist`` and in the zip; every file is named after the assignment (``master_name``). The Gradescope
    files (setup.sh, run_autograder, requirements.txt) come from ``autograder_dir``: by default the
    homework's own ``autograder/`` beside its ``assignment/`` folder if it has one, else the toolkit's.
    ``otter assign`` runs every test against the solutions; a failing test fails the build. Returns the
    stable paths of what was built.
    """
    if not master.is_file():
        raise UsageError(f"master notebook not found: {master}")
    parsed = open_master(master)
    name = master_name(parsed)
    check_name_references(parsed, name)
    questions = read_master(parsed)
    if autograder_dir is None:
        own = master.parent.parent / "autograder"
        autograder_dir = own if own.is_dir() else TOOLKIT_AUTOGRADER
    title = master_title(parsed)
    about = json.dumps({"title": title, "grader_only": list(master_config(parsed).get("autograder_files") or [])},
                       indent=1) + "\n"
    violations = check_notebook(parsed)
    if violations:
        raise UsageError(f"{master}: {len(violations)} test(s) break the test contract (see README, Editing the homework): "
                         + "; ".join(map(str, violations)))
    claim_dist(dist)
    with tempfile.TemporaryDirectory(dir=dist, prefix=".assign-") as tmp:
        out = Path(tmp) / "out"
        # The config's `requirements: ../autograder/requirements.txt` is relative to the notebook: lay the
        # homework's folder beside the Gradescope files, wherever the homework lives.
        source = Path(tmp) / "source"
        shutil.copytree(master.parent, source / master.parent.name, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(autograder_dir, source / "autograder")
        proc = subprocess.run(
            [sys.executable, "-m", "otter", "assign", str(source / master.parent.name / master.name), str(out)],
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
        repack_autograder(zips[0], staged / zip_name(name), autograder_dir=autograder_dir, questions=questions,
                          about=about)
        otter_zip_with_cpu_torch(zips[0], staged / "autograder" / OTTER_ZIP_NAME, questions)
        (staged / QUESTIONS_JSON).write_text(questions_json(questions), encoding="utf-8")
        (staged / ASSIGNMENT_JSON).write_text(about, encoding="utf-8")
        shutil.copytree(solutions, staged / "solutions", ignore=shutil.ignore_patterns("__pycache__"))
        answer_key = staged / "solutions" / "README.md"
        if answer_key.is_file():
            answer_key.write_text(fill_answer_key(answer_key.read_text(encoding="utf-8"), questions, keep_marks=False),
                                  encoding="utf-8")
        shutil.copy2(out / "autograder" / master.name, staged / "solutions" / master.name)
        build_written(staged, assignment_dir=master.parent, questions=questions, name=name, title=title)
        # Replace the previous build only once the new one is complete.
        for part in ("student", "autograder", "solutions", zip_name(name), template_name(name), QUESTIONS_JSON,
                     ASSIGNMENT_JSON):
            target = dist / part
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            (staged / part).rename(target)
        # A dist/ holds one homework: what an earlier build of another one named after itself goes.
        for stale in [*dist.glob(zip_name("*")), *dist.glob(template_name("*"))]:
            if stale.name not in (zip_name(name), template_name(name)):
                stale.unlink()
    return {
        "student": dist / "student" / master.name,
        "autograder": dist / "autograder" / master.name,
        "zip": dist / zip_name(name),
        "solutions": dist / "solutions",
        "template": dist / template_name(name),
        "questions": dist / QUESTIONS_JSON,
    }
