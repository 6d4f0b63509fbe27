"""Shared fixtures: the built dist/ (make test builds it first) and the graded known submissions."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from hwkit.grade.batch import grade_submissions
from hwkit.author.known import materialise_known
from hwkit.author.questions import Question, auto_points, load_questions, written_points

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
# `make test` runs the suite on several workers (pytest-xdist). Each test file runs whole on one worker, so its
# module's fixtures are made once; the files that read the graded known submissions (``graded_known_dir``, 88
# gradings) run together on one worker, so those are made once. The longest units start first.
SHARED_FILES = ("test_corpus.py", "test_known_submissions.py", "test_report.py")
LONGEST_FIRST = ("test_hostile.py", "graded-known", "test_student_export.py", "test_tamper.py", "test_image_build.py",
                 "test_seed_sweep.py", "test_shards.py", "test_gradescope.py", "test_isolation.py")


def _unit(nodeid: str) -> str:
    """The unit of work of a test: its file's name, or ``graded-known`` for the files sharing those gradings."""
    name = Path(nodeid.split("::", 1)[0]).name
    return "graded-known" if name in SHARED_FILES else name


def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's scheduler, run by test file (loadscope), with the units of ``_unit`` in ``LONGEST_FIRST`` order."""
    from xdist.scheduler import LoadScopeScheduling

    class ByUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

        def _assign_work_unit(self, node) -> None:
            if not getattr(self, "_ranked", False):  # the queue is complete at the first assignment
                rank = {unit: i for i, unit in enumerate(LONGEST_FIRST)}
                ranked = sorted(self.workqueue.items(), key=lambda unit: rank.get(unit[0], len(rank)))
                self.workqueue.clear()
                self.workqueue.update(ranked)
                self._ranked = True
            super()._assign_work_unit(node)

    return ByUnit(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items) -> None:
    """Fail the run if a file outside SHARED_FILES reads the graded known submissions: on its own worker it
    would grade them all again."""
    for item in items:
        if "graded_known_dir" in getattr(item, "fixturenames", ()) and item.path.name not in SHARED_FILES:
            raise pytest.UsageError(f"{item.path.name} reads graded_known_dir: add it to SHARED_FILES in conftest.py")


@pytest.fixture(scope="session")
def dist() -> Path:
    if not (DIST / "vae_hw-autograder.zip").is_file():
        pytest.exit("dist/ is not built: run `make test`, which runs `make assign` first", returncode=2)
    return DIST


@pytest.fixture(scope="session")
def autograder_zip(dist: Path) -> Path:
    return dist / "vae_hw-autograder.zip"


@pytest.fixture(scope="session")
def questions(autograder_zip: Path) -> list[Question]:
    """The questions the autograder zip was built with (the master notebook's), in notebook order."""
    return load_questions(autograder_zip)


@pytest.fixture(scope="session")
def points(questions) -> dict[str, float]:
    """The auto-graded questions' points, in notebook order."""
    return auto_points(questions)


@pytest.fixture(scope="session")
def written(questions) -> list[str]:
    """The written questions, in notebook order (the pages of the student's PDF)."""
    return list(written_points(questions))


@pytest.fixture(scope="session")
def known(dist: Path, points, tmp_path_factory):
    """The known submissions of solutions/, written afresh from the current build."""
    out = tmp_path_factory.mktemp("known-dist")
    for part in ("autograder", "student"):
        os.symlink(dist / part, out / part)
    return materialise_known(spec=ROOT / "solutions" / "known_submissions.yaml", dist=out, points=points)


@pytest.fixture(scope="session")
def graded_known_dir(known, autograder_zip: Path, tmp_path_factory) -> Path:
    """The output folder of grading every known submission with make grade's runner, in parallel."""
    out = tmp_path_factory.mktemp("graded-known")
    grade_submissions([k.path for k in known], out=out, autograder_zip=autograder_zip,
                      jobs=os.cpu_count() or 2, timeout=600, progress=None)
    return out


@pytest.fixture(scope="session")
def graded_known(graded_known_dir: Path) -> dict[str, dict[str, str]]:
    """Every known submission's gradebook row, by file name."""
    with open(graded_known_dir / "gradebook.csv", newline="", encoding="utf-8") as f:
        return {row["submission"]: row for row in csv.DictReader(f)}


def definitions(path: Path) -> dict[str, str]:
    """A notebook's top-level definitions (functions, classes, assignments): name -> source."""
    import ast

    import nbformat

    from hwkit.author.known import top_level_nodes

    found = {}
    for _, node in top_level_nodes(nbformat.read(path, as_version=4)):
        names = [getattr(node, "name", None)] + [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        found.update({n: ast.unparse(node) for n in names if n})
    return found


def otter_sample(known) -> list:
    """The known submissions otter run grades too: both bases; for every question one mistake of each kind the
    corpus has for it (losing all of the question's points, losing part of them), the first in the corpus; and
    correct variants that together change every answer some correct variant changes (taken in turn, each one that
    changes an answer not yet covered)."""
    names = ["full-credit", "blank"]
    kinds: dict[tuple[str, bool], str] = {}
    for k in known:
        q = k.name.split("-")[0]
        if not k.name.startswith("correct-") and k.name not in names and q in k.expected:
            kinds.setdefault((q, k.expected[q] == 0), k.name)
    names += kinds.values()
    reference = definitions(next(k for k in known if k.name == "full-credit").path)
    covered: set[str] = set()
    for k in known:
        if k.name.startswith("correct-"):
            defs = definitions(k.path)
            changed = {n for n in defs.keys() | reference.keys() if defs.get(n) != reference.get(n)}
            if changed - covered:
                names.append(k.name)
                covered |= changed
    return [k for k in known if k.name in names]


@pytest.fixture(scope="session")
def graded_known_otter(known, autograder_zip: Path, tmp_path_factory) -> dict[str, dict[str, str]]:
    """A sample of the known submissions (see ``otter_sample``) graded with one `otter run` each (otter's own pipeline)."""
    out = tmp_path_factory.mktemp("graded-known-otter")
    rows = grade_submissions([k.path for k in otter_sample(known)], out=out, autograder_zip=autograder_zip, engine="otter",
                             jobs=os.cpu_count() or 2, timeout=600, progress=None)
    return {row["submission"]: row for row in rows}
