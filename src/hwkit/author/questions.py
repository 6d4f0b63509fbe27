"""The questions of the homework, read from the master notebook: id, kind, points, prompt, in notebook order.

The master notebook is the only place a question is written down: a ``# BEGIN QUESTION`` raw cell
(``name``, ``points``, ``manual: true`` for a written question), its prompt (the first Markdown cell),
and, for an auto-graded question, its tests. ``hwkit assign`` reads it here and writes what it found to
``questions.json``, in ``dist/`` and in the autograder zip; whatever grades, reports or lists questions
reads that file from the autograder it grades with (the master notebook is not on Gradescope).
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from hwkit.errors import UsageError
from hwkit.text import one_line

AUTO, WRITTEN = "auto", "written"
QUESTIONS_JSON = "questions.json"
QUESTION_ID = re.compile(r"q\d+[a-z]")  # what the student module finds in a prompt (see written.student.PROMPT)
PROMPT_POINTS = re.compile(r"^\*\*(q\d+[a-z]) \(([a-z ]+), ([0-9.]+) points?\)\.?\*\*")
TEST_CONFIG = re.compile(r'"""\s*#\s*BEGIN\s*TEST\s*CONFIG\s*\n(.*?)\n\s*"""\s*#\s*END\s*TEST\s*CONFIG', flags=re.S)
TEST_NAME = re.compile(r"^def (test_\w+)\(", flags=re.M)


@dataclass(frozen=True)
class Master:
    """The master notebook, read and parsed once: its path and its JSON."""

    path: Path
    notebook: dict

    @property
    def cells(self) -> list[dict]:
        return self.notebook["cells"]


def open_master(master: Path | Master) -> Master:
    """The master notebook at ``master``, parsed; UsageError if it cannot be read as a notebook."""
    if isinstance(master, Master):
        return master
    try:
        notebook = json.loads(Path(master).read_text(encoding="utf-8"))
        if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
            raise ValueError("it has no list of cells")
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read the master notebook {master}: {e}") from None
    return Master(Path(master), notebook)


@dataclass(frozen=True)
class TestCase:
    """One test of an auto-graded question, as its TEST CONFIG header sets it."""

    name: str
    points: float
    hidden: bool


@dataclass(frozen=True)
class Question:
    """One question of the master notebook."""

    qid: str
    kind: str  # AUTO (it has tests) or WRITTEN (``manual: true``, graded by hand)
    points: float
    prompt: str  # Markdown, as in the notebook
    tests: tuple[TestCase, ...] = ()


def source(cell: dict) -> str:
    """A cell's source as one string (a notebook stores it as a string or as a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _test_cases(sources: list[str], points: float, qid: str) -> tuple[TestCase, ...]:
    """The test cells of one question, their points resolved as otter assign resolves them."""
    from otter.test_files.abstract_test import TestCase as OtterCase, TestFile

    cases = []
    for src in sources:
        config = TEST_CONFIG.search(src)
        settings = (yaml.safe_load(config.group(1)) if config else None) or {}
        name = TEST_NAME.search(src)
        if name is None:
            raise UsageError(f"{qid}: a test cell holds no `def test_...` function")
        hidden, case_points = bool(settings.get("hidden", False)), settings.get("points")
        cases.append(OtterCase(name.group(1), "", hidden, case_points, None, None))
    try:
        resolved = TestFile.resolve_test_file_points(points, cases)
    except (ValueError, AssertionError) as e:
        raise UsageError(f"{qid}: {e}") from None
    return tuple(TestCase(c.name, float(c.points), c.hidden) for c in resolved)


def read_master(master: Path | Master) -> list[Question]:
    """Every question of the master notebook, in notebook order; UsageError where one is ill-formed.

    Checks what the rest of the toolkit relies on: unique ids of the form ``q1a``; points on every question;
    an auto-graded question has tests, and their points add up to its points; a written one has none;
    the prompt starts ``**q1a (written, 1 point).**`` (``code``, ``multiple choice``, ... for the others),
    with the question's own id and points: the student's module finds the questions by it.
    """
    master = open_master(master)
    questions: list[Question] = []
    config: dict | None = None
    prompt, tests, in_tests, in_solution = "", [], False, False
    for cell in master.cells:
        src, kind = source(cell).strip(), cell.get("cell_type")
        if kind == "raw" and src.startswith("# BEGIN QUESTION"):
            try:
                config = yaml.safe_load(src[len("# BEGIN QUESTION"):]) or {}
            except yaml.YAMLError as e:
                raise UsageError(f"{master.path}: a BEGIN QUESTION cell is not YAML: {' '.join(str(e).split())}") from None
            config = config if isinstance(config, dict) else {}
            prompt, tests, in_tests, in_solution = "", [], False, False
        elif config is None:
            continue
        elif kind == "raw" and src.startswith("# END QUESTION"):
            questions.append(_question(config, prompt, tests))
            config = None
        elif kind == "raw" and src.split("\n")[0].strip() in ("# BEGIN TESTS", "# END TESTS"):
            in_tests = src.startswith("# BEGIN")
        elif kind == "raw" and src.split("\n")[0].strip() in ("# BEGIN SOLUTION", "# END SOLUTION"):
            in_solution = src.startswith("# BEGIN")
        elif kind == "markdown" and not prompt and not in_solution:
            prompt = src
        elif kind == "code" and in_tests:
            tests.append(src)
    if config is not None:
        raise UsageError(f"{master.path}: question {config.get('name')!r} has no `# END QUESTION`")
    ids = [q.qid for q in questions]
    twice = sorted({q for q in ids if ids.count(q) > 1})
    if twice:
        raise UsageError(f"{master.path}: a question id appears twice: {', '.join(twice)}")
    return questions


def _question(config: dict, prompt: str, test_sources: list[str]) -> Question:
    qid = str(config.get("name", ""))
    if not QUESTION_ID.fullmatch(qid):
        raise UsageError(f"question {qid!r}: an id is q, a number and a letter (q1b)")
    if not isinstance(config.get("points"), (int, float)) or isinstance(config.get("points"), bool):
        raise UsageError(f"{qid}: give the question its `points:` (a number) in its BEGIN QUESTION cell")
    written = bool(config.get("manual"))
    if written and test_sources:
        raise UsageError(f"{qid}: a written question (manual: true) has no tests")
    if not written and not test_sources:
        raise UsageError(f"{qid}: an auto-graded question needs tests (or `manual: true` for a written one)")
    tests = () if written else _test_cases(test_sources, config["points"], qid)
    points = float(config["points"])
    if tests and abs(sum(t.points for t in tests) - points) > 1e-9:
        raise UsageError(f"{qid}: points: {points:g}, but its tests add up to {sum(t.points for t in tests):g}")
    m = PROMPT_POINTS.match(prompt)
    if not m or m.group(1) != qid or (m.group(2) == "written") != written or float(m.group(3)) != points:
        start = f"**{qid} ({'written' if written else 'code'}, {points:g} point{'s' * (points != 1)}).**"
        raise UsageError(f"{qid}: its prompt must start with {start} (found {prompt[:60]!r})")
    return Question(qid, WRITTEN if written else AUTO, points, prompt, tests)


def master_config(master: Path | Master) -> dict:
    """The master notebook's ``# ASSIGNMENT CONFIG`` (otter assign's settings); UsageError if it has none."""
    master = open_master(master)
    for cell in master.cells:
        src = source(cell).strip()
        if cell.get("cell_type") == "raw" and src.startswith("# ASSIGNMENT CONFIG"):
            try:
                config = yaml.safe_load(src[len("# ASSIGNMENT CONFIG"):]) or {}
            except yaml.YAMLError as e:
                raise UsageError(f"{master.path}: its ASSIGNMENT CONFIG is not YAML: {' '.join(str(e).split())}") from None
            if isinstance(config, dict):
                return config
    raise UsageError(f"{master.path}: no `# ASSIGNMENT CONFIG` raw cell (otter assign's format)")


NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")  # the student's last cell imports <name>_written
# Where the master notebook's code names its own notebook and the shipped PDF module.
NAME_REFERENCES = (re.compile(r"""\bNotebook\(\s*["']([^"']*)["']"""), re.compile(r"""\bexport_written\(\s*["']([^"']*)["']"""),
                   re.compile(r"^\s*(?:from|import)\s+(\w+)_written\b", flags=re.M))


def master_name(master: Path | Master) -> str:
    """The assignment's name: otter's ``name:`` in the ASSIGNMENT CONFIG, which must be the notebook's own
    name (``<name>.ipynb``), since every built file is named after it, and a Python module name (ASCII
    letters, 0-9 and ``_``, not starting with 0-9, at most 100), since the student notebook imports ``<name>_written``."""
    master = open_master(master)
    name = str(master_config(master).get("name") or "")
    if name != master.path.stem:
        raise UsageError(f"{master.path}: its ASSIGNMENT CONFIG says name: {name or '(none)'}; the name must be the "
                         f"notebook's, {master.path.stem}")
    if not NAME.fullmatch(name):
        raise UsageError(f"{master.path}: the name {one_line(name, 60)!r} is not usable: a name is ASCII letters, 0-9 "
                         "and _, not starting with 0-9, at most 100 (the student notebook imports <name>_written)")
    return name


def check_name_references(master: Path | Master, name: str) -> None:
    """UsageError if a code cell of the master notebook names another notebook (``otter.Notebook("x.ipynb")``,
    ``export_written("x.ipynb")``) or PDF module (``from x_written import``) than the assignment's own."""
    master = open_master(master)
    for index, cell in enumerate(master.cells, 1):
        if cell.get("cell_type") != "code":
            continue
        src = source(cell)
        for pattern, own in zip(NAME_REFERENCES, (f"{name}.ipynb", f"{name}.ipynb", name)):
            for found in pattern.findall(src):
                if found != own:
                    shown = found if own != name else f"{found}_written"
                    want = own if own != name else f"{name}_written"
                    raise UsageError(f"{master.path}: code cell {index} names {one_line(shown, 60)!r}, not {want!r}: "
                                     f"every reference to the notebook and its PDF module must use the name {name}")


def master_title(master: Path | Master) -> str:
    """The homework's title (the notebook's ``metadata.title``), or its name."""
    master = open_master(master)
    metadata = master.notebook.get("metadata")
    title = metadata.get("title") if isinstance(metadata, dict) else None
    return str(title) if title else master.path.stem


def questions_json(questions: list[Question]) -> str:
    """The text of ``questions.json``: the questions in notebook order."""
    return json.dumps({"questions": [asdict(q) for q in questions]}, indent=1, ensure_ascii=False) + "\n"


def load_questions(autograder: Path) -> list[Question]:
    """The questions an autograder (its zip, or its folder as unpacked on Gradescope) was built with."""
    autograder = Path(autograder)
    if autograder.is_dir():
        data = (autograder / QUESTIONS_JSON).read_text(encoding="utf-8")
    else:
        with zipfile.ZipFile(autograder) as zf:
            data = zf.read(QUESTIONS_JSON).decode("utf-8")
    return [Question(**{**q, "tests": tuple(TestCase(**t) for t in q["tests"])}) for q in json.loads(data)["questions"]]


def auto_points(questions: list[Question]) -> dict[str, float]:
    """Points of each auto-graded question, in notebook order."""
    return {q.qid: q.points for q in questions if q.kind == AUTO}


def written_points(questions: list[Question]) -> dict[str, float]:
    """Points of each written question, in notebook order (the order of the pages of the student's PDF)."""
    return {q.qid: q.points for q in questions if q.kind == WRITTEN}


def question_points(autograder: Path) -> dict[str, float]:
    """Points of each auto-graded question, in notebook order, from the autograder's ``questions.json``."""
    return auto_points(load_questions(autograder))
