"""One submission, graded: the one path behind `make grade`, `make gradescope-check`, the Gradescope zip and `make bench`.

- ``Budgets``: every time and memory budget and its default, in one place; the command line and
  Gradescope's environment variables only override them.
- ``assignment_name``: the assignment an autograder grades, from otter's config inside it.
- ``read_notebook``: a submission given as a file (``.ipynb``, or the export cell's ``.zip``) or as a
  folder (Gradescope's upload), read with the caps of ``submissions``, checked to be of the assignment.
- ``open_engine``: ``fork`` (our runner) or ``otter`` (one ``otter run`` per notebook), both turning
  notebook bytes into a ``RunResult``. (``docker`` hands a whole batch to ``otter grade``: see ``grade``.)
- ``grade_one``: read, grade, check the ``results.json`` we write against Gradescope's schema; any
  failure, from reading to checking, becomes the result's status.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping

from hwkit.errors import UsageError
from hwkit.grade.runner import RunResult, run_otter
from hwkit.grade.submissions import Ungradable, notebook_bytes
from hwkit.text import one_line

ENGINES = ("fork", "otter", "docker")


@dataclass(frozen=True)
class Budgets:
    """How long and how much one submission may take."""

    submission: float = 180.0  # seconds for the whole submission, restarts included
    cell: float = 60.0  # seconds per cell (then 10 s of grace before the cell is killed)
    question: float = 60.0  # seconds of probe calls per question
    memory_mb: int = 2048  # address space per submission process, above the preloaded libraries

    # On Gradescope the whole run has 10 minutes (its default): a submission gets 7 of them.
    GRADESCOPE_SUBMISSION = 420.0
    ENVIRONMENT = {"HWKIT_TIMEOUT": "submission", "HWKIT_CELL_TIMEOUT": "cell",
                   "HWKIT_QUESTION_TIMEOUT": "question", "HWKIT_MEMORY_MB": "memory_mb"}

    def __post_init__(self):
        for name in ("submission", "cell", "question", "memory_mb"):
            value = getattr(self, name)
            if not value > 0:
                raise UsageError(f"the {name.replace('_', ' ')} budget must be positive, got {value:g}")

    @classmethod
    def for_gradescope(cls, environ: Mapping[str, str]) -> "Budgets":
        """Gradescope's budgets, each overridden by its environment variable if set."""
        budgets = cls(submission=cls.GRADESCOPE_SUBMISSION)
        changes = {}
        for variable, name in cls.ENVIRONMENT.items():
            if environ.get(variable):
                try:
                    changes[name] = (int if name == "memory_mb" else float)(environ[variable])
                except ValueError:
                    raise UsageError(f"{variable}={environ[variable]!r} is not a number") from None
        return replace(budgets, **changes)


def assignment_name(autograder: Path) -> str:
    """The assignment an autograder (its zip, or its folder as unpacked on Gradescope) grades."""
    try:
        if Path(autograder).is_dir():
            config = json.loads((Path(autograder) / "otter_config.json").read_text(encoding="utf-8"))
        else:
            with zipfile.ZipFile(autograder) as zf:
                config = json.loads(zf.read("otter_config.json"))
        return str(config["assignment_name"])
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile):
        raise UsageError(f"not a readable autograder: {autograder} (run `make assign` first)") from None


def read_notebook(path: Path, assignment: str) -> bytes:
    """The notebook of a submission file or folder; ``Ungradable`` (a sentence for the student) if there is none."""
    if path.is_dir():  # Gradescope's upload: the only notebook, the one named for the assignment, or a zip
        candidates = [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in (".ipynb", ".zip")
                      and ".ipynb_checkpoints" not in p.parts and "__MACOSX" not in p.parts]
        notebooks = [p for p in candidates if p.suffix.lower() == ".ipynb"] or candidates
        if not notebooks:
            raise Ungradable(f"no notebook was found in your submission: upload {assignment}.ipynb or the zip made by "
                             "the last cell")
        preferred = [p for p in notebooks if p.name == f"{assignment}.ipynb"]
        if len(notebooks) > 1 and len(preferred) != 1:
            raise Ungradable(f"your submission holds several notebooks: upload only {assignment}.ipynb")
        path = (preferred or notebooks)[0]
    raw = notebook_bytes(path, assignment)
    otter = json.loads(raw).get("metadata", {}).get("otter")  # the student's data: any JSON value
    name = otter.get("assignment_name") if isinstance(otter, dict) else None
    if name not in (None, assignment):
        raise Ungradable(f"this notebook belongs to another assignment ({one_line(name, 60)!r}), not {assignment}")
    return raw


class Engine:
    """Grades notebook bytes into a RunResult; ``confinement`` says how submissions ran; ``ours``: the results
    are the ones we write, held to Gradescope's schema (otter's own results.json is taken as otter writes it:
    its "Public Tests" entry has no score, which the schema does not allow but Gradescope accepts)."""

    confinement: str

    def __init__(self, grade: Callable[[bytes], RunResult], close: Callable[[], None], confinement: str,
                 ours: bool = True):
        self.grade, self.close, self.confinement, self.ours = grade, close, confinement, ours

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_engine(engine: str, autograder: Path, budgets: Budgets, *, insecure: bool = False) -> Engine:
    """The engine ``engine`` over ``autograder``; a UsageError where it cannot run (no confinement, say)."""
    if engine == "otter":
        name = assignment_name(autograder)
        return Engine(lambda nb: run_otter(nb, autograder_zip=autograder, name=name, timeout=budgets.submission),
                      lambda: None, "none (otter run)", ours=False)
    if engine != "fork":
        raise UsageError(f"unknown engine {engine!r} for one submission: choose fork or otter")
    from hwkit.grade.executor import Executor

    executor = Executor(autograder, timeout=budgets.submission, cell_timeout=budgets.cell,
                        question_timeout=budgets.question, memory_mb=budgets.memory_mb, insecure=insecure)
    return Engine(executor.grade, executor.close, executor.mode)


def read_submission(path: Path, assignment: str) -> bytes | RunResult:
    """The notebook of one submission file or folder, or, where it has none that can be graded, a
    ``RunResult`` whose status says why (this never raises, ``BaseException`` included)."""
    try:
        return read_notebook(path, assignment)
    except Ungradable as e:
        return RunResult(str(e))
    except BaseException as e:  # noqa: BLE001 - one submission must never end the batch
        return RunResult(one_line(f"grader error while reading: {type(e).__name__}: {e}", 300))


def grade_notebook(notebook: bytes, engine: Engine) -> RunResult:
    """Grade a submission's notebook with ``engine`` and check the results it gives; whatever goes wrong
    becomes its status (this never raises, ``BaseException`` included)."""
    from hwkit.grade.results import validate_results

    try:
        result = engine.grade(notebook)
        if result.results is not None and engine.ours:
            validate_results(result.results)
        return result
    except BaseException as e:  # noqa: BLE001
        return RunResult(one_line(f"grader error: {type(e).__name__}: {e}", 300))


def grade_one(path: Path, engine: Engine, assignment: str) -> RunResult:
    """Grade one submission file or folder: ``read_submission``, then ``grade_notebook``."""
    notebook = read_submission(path, assignment)
    return notebook if isinstance(notebook, RunResult) else grade_notebook(notebook, engine)
