"""Known submissions: notebooks derived from the built ones, each with its expected scores.

``solutions/known_submissions.yaml`` lists them. Each entry starts from a ``base`` notebook
(``autograder``: full credit, or ``student``: blank), optionally ``replace``s the top-level
definition of some names with other code, optionally appends cells, and states the scores
that differ from the base's (full marks for ``autograder``, zero for ``student``).

``solutions/tamper_submissions.yaml`` lists attacks on the grader in the same form: each names a
known mistake as its ``baseline``, inherits that entry (base, replacements, expected scores) and
adds cells before (``prepend``) or after (``append``) the notebook's own. An attack must never
score more than its baseline.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

from hwkit.errors import UsageError


@dataclass(frozen=True)
class KnownSubmission:
    name: str
    about: str
    path: Path
    expected: dict[str, float]  # question -> points
    message: str = ""  # a distinctive part of the feedback the mistake must get, if any
    baseline: str = ""  # for an attack: the known mistake it must not score more than


def _defines(node: ast.stmt, name: str) -> bool:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name == name
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(t, ast.Name) and t.id == name for t in targets)
    return False


def top_level_nodes(nb: nbformat.NotebookNode, *, skip_ignored: bool = False):
    """(cell, statement) for every top-level statement of the code cells that parse."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if skip_ignored and "otter_ignore" in cell.get("metadata", {}).get("tags", []):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in tree.body:
            yield cell, node


def replace_definition(nb: nbformat.NotebookNode, name: str, code: str) -> None:
    """Replace the top-level definition of ``name`` in the notebook's code cells by ``code``."""
    for cell, node in top_level_nodes(nb):
        if _defines(node, name):
            lines = cell.source.split("\n")
            new = textwrap.dedent(code).rstrip("\n").split("\n")
            cell.source = "\n".join(lines[: node.lineno - 1] + new + lines[node.end_lineno :])
            return
    raise UsageError(f"no top-level definition of {name!r} in the base notebook")


def built_notebook(dist: Path, part: str) -> Path:
    """The notebook otter assign built into ``dist/<part>`` (``autograder``: full credit, ``student``: blank)."""
    found = sorted((dist / part).glob("*.ipynb"))
    if len(found) != 1:
        raise UsageError(f"expected one notebook in {dist / part}, found {len(found)} (run `make assign` first)")
    return found[0]


def reference_namespace(autograder_notebook: Path) -> dict:
    """Execute the definitions (imports, functions, classes) of the full-credit notebook; return its globals."""
    nb = nbformat.read(autograder_notebook, as_version=4)
    kinds = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
    keep = [node for _, node in top_level_nodes(nb, skip_ignored=True) if isinstance(node, kinds)]
    env: dict = {}
    exec(compile(ast.Module(keep, type_ignores=[]), "<reference>", "exec"), env)
    return env


def materialise_known(*, spec: Path, dist: Path, points: dict[str, float], baselines: Path | None = None,
                      folder: str = "known") -> list[KnownSubmission]:
    """Write every submission in ``spec`` to ``dist/<folder>/<name>.ipynb``; return them.

    ``points``: the auto-graded questions' points (their ids are the questions a score can be expected for).
    ``baselines``: the spec whose entries a ``baseline`` field refers to (the known submissions).
    """
    entries = _entries(spec)
    parents = {e["name"]: e for e in _entries(baselines)} if baselines else {}
    bases = {part: built_notebook(dist, part) for part in ("autograder", "student")}
    out_dir = dist / folder
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.ipynb"):  # entries since removed from the spec, or another homework's
        old.unlink()
    known, seen = [], set()
    for entry in entries:
        name = entry["name"]
        if entry.get("baseline"):
            if entry["baseline"] not in parents:
                raise UsageError(f"{spec}: entry {name!r} names an unknown baseline {entry['baseline']!r}")
            parent = parents[entry["baseline"]]
            entry = {**parent, **{k: v for k, v in entry.items() if k in ("name", "about", "baseline", "prepend", "append")},
                     "expected": {**(parent.get("expected") or {}), **(entry.get("expected") or {})},
                     "append": (parent.get("append") or []) + (entry.get("append") or [])}
        base = entry.get("base", "autograder")
        if name in seen or base not in bases:
            raise UsageError(f"{spec}: duplicate name or unknown base in entry {name!r}")
        seen.add(name)
        nb = nbformat.read(bases[base], as_version=4)
        for target, code in (entry.get("replace") or {}).items():
            replace_definition(nb, target, code)
        nb.cells[:0] = [nbformat.v4.new_code_cell(textwrap.dedent(code)) for code in entry.get("prepend") or []]
        for code in entry.get("append") or []:
            nb.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(code)))
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        path = out_dir / f"{name}.ipynb"
        nbformat.write(nb, path)
        full = base == "autograder"
        expected = {q: (points[q] if full else 0.0) for q in points}
        unknown = set(entry.get("expected") or {}) - set(points)
        if unknown:
            raise UsageError(f"{spec}: entry {name!r} expects scores for unknown questions {sorted(unknown)}")
        expected.update({q: float(v) for q, v in (entry.get("expected") or {}).items()})
        known.append(KnownSubmission(name, entry.get("about", ""), path, expected, str(entry.get("message") or ""),
                                     str(entry.get("baseline") or "")))
    return known


def _entries(spec: Path) -> list[dict]:
    entries = yaml.safe_load(spec.read_text(encoding="utf-8"))
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "name" in e for e in entries):
        raise UsageError(f"{spec}: expected a list of entries, each with a name")
    return entries
