"""The test contract, checked before a build: probes call, verdicts judge, and nothing else mixes.

A test cell of the master notebook is one ``test_*`` function whose parameters are the student's
objects. The contract that lets the grader run the probes in the student's sandbox and the rest in
a process that never runs student code:

- the student's objects are used only as arguments of a nested ``probe_*`` call;
- a probe uses only its own parameters, names it binds itself (imports included) and builtins;
- a probe asserts nothing: every check is the verdict's;
- no assertion message is built from values (f-strings, ``%``, ``.format``, ``str``), so that no student value can reach it.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass
from pathlib import Path

from hwkit.author.questions import Master, open_master, source


BUILTINS = set(dir(builtins))


@dataclass(frozen=True)
class Violation:
    test: str
    line: int  # in the test cell
    problem: str

    def __str__(self) -> str:
        return f"{self.test}, line {self.line} of its cell: {self.problem}"


def _bound(node: ast.AST) -> set[str]:
    """Every name a function binds anywhere inside it (parameters, assignments, imports, nested defs)."""
    names: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            names.add(n.id)
        elif isinstance(n, ast.arg):
            names.add(n.arg)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in n.names)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            names.add(n.name)
    return names


def _formats(node: ast.AST) -> bool:
    """Does this expression build text from values (f-string, %, .format, str(), repr())?"""
    for n in ast.walk(node):
        if isinstance(n, ast.JoinedStr) or isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod):
            return True
        if isinstance(n, ast.Call) and (isinstance(n.func, ast.Attribute) and n.func.attr == "format"
                                        or isinstance(n.func, ast.Name) and n.func.id in ("str", "repr", "format")):
            return True
    return False


def _message_violations(test: str, node: ast.AST) -> list[Violation]:
    found = []
    for n in ast.walk(node):
        message = n.msg if isinstance(n, ast.Assert) else n.exc if isinstance(n, ast.Raise) else None
        if message is not None and _formats(message):
            found.append(Violation(test, n.lineno, "an assertion message must be fixed text, not built from values"))
    return found


def check_test(source: str) -> list[Violation]:
    """The contract violations of one test cell's source."""
    tree = ast.parse(source)
    found: list[Violation] = []
    for func in (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")):
        student = {a.arg for a in func.args.args}
        probes = [n for n in func.body if isinstance(n, ast.FunctionDef) and n.name.startswith("probe_")]
        for probe in probes:
            if any(isinstance(n, ast.Assert) for n in ast.walk(probe)):
                line = next(n.lineno for n in ast.walk(probe) if isinstance(n, ast.Assert))
                found.append(Violation(func.name, line, f"{probe.name} asserts: every check belongs to the verdict"))
            bound = _bound(probe)
            for n in ast.walk(probe):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in bound and n.id not in BUILTINS:
                    found.append(Violation(func.name, n.lineno,
                                           f"{probe.name} uses {n.id} without receiving it as an argument"))
        probe_names = {p.name for p in probes}
        allowed: set[int] = set()  # ids of Name nodes that are arguments of a probe call
        for n in ast.walk(func):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in probe_names:
                allowed.update(id(a) for a in n.args if isinstance(a, ast.Name))
        inside_probes = {id(n) for p in probes for n in ast.walk(p)}
        for n in ast.walk(func):
            if isinstance(n, ast.Name) and n.id in student and id(n) not in allowed and id(n) not in inside_probes:
                found.append(Violation(func.name, n.lineno, f"the student's {n.id} is used outside a probe"))
        found += _message_violations(func.name, func)
    return found


def check_notebook(master: Path | Master) -> list[Violation]:
    """Every violation in the test cells (between BEGIN TESTS and END TESTS) of a master notebook."""
    found, in_tests = [], False
    for cell in open_master(master).cells:
        text = source(cell).strip()
        if cell.get("cell_type") == "raw" and text in ("# BEGIN TESTS", "# END TESTS"):
            in_tests = text == "# BEGIN TESTS"
        elif in_tests and cell.get("cell_type") == "code":
            found += check_test(source(cell))
    return found
