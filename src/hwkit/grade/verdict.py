"""The trusted half of grading: every test's comparisons, in a process that never runs student code.

Each ``test_*`` function of a test file defines its ``probe_*`` functions inside itself. A probe
calls the student's code on inputs the test chose and returns what that code produced; the rest
of the test (the verdict) computes what is expected from its own inputs and asserts.
In otter's own in-kernel run the test calls its probes directly. Here the test functions run in
this process, with placeholders for the student's objects, and each probe call is sent (the
probe's own source and its arguments, encoded by ``wire.encode``) to the submission's sandbox,
which runs it against the student's objects in a process forked for that call and answers with
JSON. What comes back is decoded by ``wire.decode`` into plain tensors, numbers and strings,
checked for size first; nothing is ever unpickled or executed here.

Grading order is the grader's: once the notebook has run, the public tests of every question,
then the hidden tests of every question. Messages a student reads are the tests' own fixed
sentences; of an error the student's code raised, a hidden test reports only its type and the
function that raised it, a public test also its message, on one line.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import inspect
import json
import os
from contextlib import contextmanager

from hwkit.wire import BadValue, Lost, decode, encode, identifier, one_line, receive, send

PROBE_HOOK = "__hwkit_probe__"
NOT_READABLE = "the result could not be read: it has the wrong type, shape or size"
# The types a report may name: a notebook chooses which exception it raises, so the list is short.
KNOWN_ERRORS = ("TypeError", "ValueError", "RuntimeError", "IndexError", "KeyError", "AttributeError", "NameError",
                "ZeroDivisionError", "NotImplementedError", "AssertionError", "OverflowError", "MemoryError")


class ProbeFailure(Exception):
    """The student's code raised inside a probe (an ``Exception``: a test may catch it and say why)."""

    def __init__(self, record: dict, students: list[str]):
        kind, function = identifier(record.get("type")), identifier(record.get("function"))
        self.kind = kind if kind in KNOWN_ERRORS else "an exception"
        # Only the name of one of the student's objects the probe was given may be shown.
        self.function = function if function in students else (students[0] if len(students) == 1 else "your code")
        self.detail = one_line(record.get("message", ""), 200)
        super().__init__(f"{self.kind} raised by {self.function}")


class QuestionFailed(BaseException):
    """A probe's process timed out or died: the whole question is lost, with this reason."""


class StudentLost(BaseException):
    """The submission's sandbox stopped answering: the run ends here."""


class Student:
    """Stands for one of the student's objects: a test may only hand it on to a probe."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<the student's {self.name}>"


def split_probes(source: str) -> tuple[ast.Module, dict[str, str]]:
    """Take the probes out of a test file: the file with each probe replaced by a stub, and their sources.

    Otter allows one function per test cell, so a test defines its probes inside itself:
    ``def test_x(f): def probe_x(f): ...; got = probe_x(f); assert ...``. Here each such nested
    ``def probe_*`` becomes ``probe_* = __hwkit_probe__("probe_*")``, and the probe's source is kept
    to be sent, alone, to the student's process.
    """
    tree = ast.parse(source)
    probes: dict[str, str] = {}
    for func in tree.body:
        if not isinstance(func, ast.FunctionDef):
            continue
        for i, node in enumerate(func.body):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("probe_"):
                source = ast.unparse(node)
                if probes.setdefault(node.name, source) != source:  # tests may share a probe, word for word
                    raise ValueError(f"probe {node.name} is defined twice, differently")
                stub = ast.parse(f"{node.name} = {PROBE_HOOK}({node.name!r})").body[0]
                func.body[i] = ast.copy_location(stub, node)
    return ast.fix_missing_locations(tree), probes


def _argument(value):
    if isinstance(value, Student):
        return {"__student__": value.name}
    return encode(value)


def case_message(error: BaseException, *, hidden: bool) -> str:
    """The sentence a student reads for a failed test case."""
    if isinstance(error, AssertionError):  # the test's own sentence (hidden tests: a string literal, see lint)
        return one_line(str(error), 500) or "the test failed"
    if isinstance(error, ProbeFailure):
        if hidden or not error.detail:
            return str(error)
        return f"{error}: {error.detail}"
    if isinstance(error, BadValue):
        return NOT_READABLE
    return NOT_READABLE  # the verdict could not work with what came back: say no more than that


class QuestionTests:
    """One question's test file, loaded in this (trusted) process."""

    def __init__(self, question: str, source: str):
        from otter.test_files import ExceptionTestFile

        self.question = question
        tree, self.probes = split_probes(source)
        self._answers: dict[str, dict] = {}  # a probe called again with the same arguments is answered once
        self.file = ExceptionTestFile.from_string(ast.unparse(tree), path=f"{question}.py")

    def run(self, call, *, hidden: bool) -> list[dict]:
        """Run the public (or hidden) cases; ``call(question, name, source, args)`` runs one probe remotely."""
        cases = []
        for tc in self.file.test_cases:
            if bool(tc.hidden) != hidden:
                continue
            func = tc.body.test_func
            func.__globals__[PROBE_HOOK] = lambda name: self._stub(call, name)
            params = inspect.signature(func).parameters
            try:
                func(**{p: Student(p) for p in params})
                passed, message = True, ""
            except Exception as e:
                passed, message = False, case_message(e, hidden=bool(tc.hidden))
            cases.append({"name": func.__name__, "points": tc.points, "hidden": bool(tc.hidden),
                          "passed": passed, "message": message})
        return cases

    def _stub(self, call, name: str):
        source = self.probes[name]

        def probe(*args):
            encoded = [_argument(a) for a in args]
            key = json.dumps([name, encoded])
            if key not in self._answers:
                self._answers[key] = call(self.question, name, source, encoded)
            answer = self._answers[key]
            if "error" in answer:
                students = [a.name for a in args if isinstance(a, Student)]
                raise ProbeFailure(answer["error"] if isinstance(answer["error"], dict) else {}, students)
            return decode(answer.get("value"))
        probe.__name__ = name
        return probe


def submission_seed(secret: bytes, notebook: bytes) -> int:
    """The shift of every seed the tests set, for one submission: fresh per notebook, unknown without the secret."""
    digest = hmac.new(secret, hashlib.sha256(notebook).digest(), hashlib.sha256).digest()
    return int.from_bytes(digest[:6], "big")


@contextmanager
def shifted_seeds(shift: int):
    """Every ``torch.manual_seed(s)`` in this process seeds ``s + shift`` instead (the tests' inputs change)."""
    import torch

    original = torch.manual_seed
    torch.manual_seed = lambda seed: original((int(seed) + shift) % 2**63)
    try:
        yield
    finally:
        torch.manual_seed = original


def _report_question(report, q: str, cases: dict, lost: dict) -> None:
    if q in lost:
        send(report, event="question", question=q, error=lost[q])
    else:
        send(report, event="question", question=q, cases=cases[q])


def serve(*, student, report, tests: dict[str, str], questions: list[str], question_timeout: float, files: str,
          seed_shift: int = 0) -> None:
    """The verdict process: follow the notebook's run, then grade every question it can.

    ``student``: the connection to the submission's supervisor; ``report``: to the executor, which
    trusts only what comes from here; ``files``: a private copy of the assignment's files.
    Reports: cell progress, one ``question`` per graded question (its cases, or why it was lost),
    and ``done`` (with how the run ended) or ``lost``.
    """
    import ctypes

    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no process of the submission can trace this one
    os.chdir(files)  # the assignment's files (data/), as the tests expect them: the grader's copy
    import torch

    torch.set_num_threads(1)

    def call(question, name, src, args):
        send(student, event="call", call=dict(question=question, name=name, source=src, args=args))
        try:
            answer = receive(student, question_timeout + 30)  # the sandbox enforces the budget itself
        except Lost:
            raise StudentLost() from None
        if answer.get("event") != "result":
            raise StudentLost()
        if "failure" in answer:
            raise QuestionFailed(one_line(answer["failure"], 100))
        return answer

    try:
        while True:
            message = receive(student)
            event = message.get("event")
            if event in ("cell", "cell_timeout"):
                send(report, event=event, index=int(message["index"]), seconds=float(message.get("seconds", 0)))
            elif event == "isolation":
                send(report, event=event, level=one_line(message.get("level"), 100),
                     reason=one_line(message.get("reason"), 300))
            elif event == "cells_end":
                break
            else:
                raise Lost("unexpected message")
        checked = {str(q) for q in message.get("checked", [])}
        ready = [q for q in questions if q in checked or message.get("end") is True]
        cases: dict[str, list[dict]] = {q: [] for q in ready}
        lost: dict[str, str] = {}
        complete: set[str] = set()
        loaded: dict[str, QuestionTests] = {}
        with shifted_seeds(seed_shift):
            for hidden in (False, True):  # every public test before any hidden one
                for q in ready:
                    if q not in lost:
                        send(student, event="serve", question=q)
                        try:
                            if q not in loaded:
                                loaded[q] = QuestionTests(q, tests[q])
                            cases[q] += loaded[q].run(call, hidden=hidden)
                        except QuestionFailed as e:
                            lost[q] = str(e)
                        except StudentLost:
                            lost[q] = "the notebook's process died while this question was graded"
                            raise
                        except Exception as e:  # our own test file failed to load: the grader's fault, said so
                            lost[q] = f"grader error: {type(e).__name__}"
                        send(student, event="pause")
                    if hidden:  # this question is finished: report it at once
                        complete.add(q)
                        _report_question(report, q, cases, lost)
        send(report, event="done", ended=one_line(message.get("ended", ""), 100), cell=int(message.get("cell", -1)))
        send(student, event="exit")
    except StudentLost:
        for q in ready:
            if q not in complete:
                lost.setdefault(q, "the notebook's process died while grading")
                _report_question(report, q, cases, lost)
        send(report, event="lost", reason="the notebook's process died while grading")
    except (Lost, KeyError, TypeError, ValueError) as e:
        send(report, event="lost", reason=type(e).__name__)
