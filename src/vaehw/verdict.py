"""The trusted half of grading: every test's comparisons, in a process that never runs student code.

Each ``test_*`` function of a test file defines its ``probe_*`` functions inside itself. A probe
calls the student's code and returns plain data; the rest of the test computes what is expected
and asserts.
In otter's own in-kernel run the test calls its probes directly. Here the test functions run in
this process, with placeholders for the student's objects, and each probe call is sent as
JSON (the probe's own source and plain arguments) to the student's process, which runs it in a
process forked for that call and answers with JSON. Nothing the student's process sends is ever
unpickled or executed here, and no hidden test source other than the probe called, no expected
value and no reference solution is ever sent to it.
"""

from __future__ import annotations

import ast
import json
import os

MAX_MESSAGE = 64 * 2**20  # bytes: a larger message from the student's process ends the run


class ProbeFailure(Exception):
    """The student's code failed inside a probe; ``str`` is the message as the student sees it."""


class QuestionFailed(Exception):
    """A probe's process timed out or died: the whole question is lost, with this reason."""


class Lost(Exception):
    """The student's process stopped answering (died, closed its end, or sent garbage)."""


class Student:
    """Stands for one of the student's objects: a test may only hand it on to a probe."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<the student's {self.name}>"


def send(conn, **message) -> None:
    conn.send_bytes(json.dumps(message).encode())


def receive(conn, timeout: float | None = None) -> dict:
    """The next JSON message; ``Lost`` on end of stream, silence past ``timeout``, or garbage."""
    try:
        if timeout is not None and not conn.poll(max(timeout, 0)):
            raise Lost("no answer")
        message = json.loads(conn.recv_bytes(MAX_MESSAGE))
    except (EOFError, OSError, ValueError, RecursionError) as e:
        raise Lost(type(e).__name__) from None
    if not isinstance(message, dict):
        raise Lost("not a message")
    return message


PROBE_HOOK = "__vaehw_probe__"


def split_probes(source: str) -> tuple[ast.Module, dict[str, str]]:
    """Take the probes out of a test file: the file with each probe replaced by a stub, and their sources.

    Otter allows one function per test cell, so a test defines its probes inside itself:
    ``def test_x(f): def probe_x(f): ...; got = probe_x(f); assert ...``. Here each such nested
    ``def probe_*`` becomes ``probe_* = __vaehw_probe__("probe_*")``, and the probe's source is kept
    to be sent, alone, to the student's process.
    """
    tree = ast.parse(source)
    probes: dict[str, str] = {}
    for func in tree.body:
        if not isinstance(func, ast.FunctionDef):
            continue
        for i, node in enumerate(func.body):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("probe_"):
                if node.name in probes:
                    raise ValueError(f"probe {node.name} is defined twice")
                probes[node.name] = ast.unparse(node)
                stub = ast.parse(f"{node.name} = {PROBE_HOOK}({node.name!r})").body[0]
                func.body[i] = ast.copy_location(stub, node)
    return ast.fix_missing_locations(tree), probes


def _plain(value):
    if isinstance(value, Student):
        return {"__student__": value.name}
    return value


class QuestionTests:
    """One question's test file, loaded in this (trusted) process."""

    def __init__(self, question: str, source: str):
        from otter.test_files import ExceptionTestFile

        self.question = question
        tree, self.probes = split_probes(source)
        self.file = ExceptionTestFile._from_compiled_code(compile(tree, f"{question}.py", "exec"), path=f"{question}.py")

    def run(self, call) -> list[dict]:
        """Run every case; ``call(question, name, source, args)`` runs one probe in the student's process."""
        cases = []
        for tc in self.file.test_cases:
            func = tc.body.test_func
            func.__globals__[PROBE_HOOK] = lambda name: self._stub(call, name)
            params = tc.body._get_func_params()
            try:
                func(**{p: Student(p) for p in params})
                passed, message = True, ""
            except ProbeFailure as e:
                passed, message = False, str(e)
            except (Lost, QuestionFailed):
                raise
            except Exception as e:
                passed, message = False, f"{type(e).__name__}: {e}"
            cases.append({"name": func.__name__, "points": tc.points, "hidden": tc.hidden,
                          "passed": passed, "message": message[:2000]})
        return cases

    def _stub(self, call, name: str):
        source = self.probes[name]

        def probe(*args):
            return call(self.question, name, source, [_plain(a) for a in args])
        probe.__name__ = name
        return probe


def serve(*, student, report, tests: dict[str, str], questions: list[str], question_timeout: float, files: str) -> None:
    """The verdict process: follow the student's run, grade each question when it is ready.

    ``student``: the connection to the student's process; ``report``: to the executor, which
    trusts only what comes from here; ``files``: the assignment's files. Reports: cell progress,
    one ``question`` per graded question (its cases), and ``done`` or ``lost``.
    """
    os.environ["OMP_NUM_THREADS"] = "1"
    os.chdir(files)  # the assignment's files (data/digits.npz), as the tests expect them: a private copy
    import torch

    torch.set_num_threads(1)
    todo = list(questions)

    def call(question, name, src, args):
        send(student, call=dict(question=question, name=name, source=src, args=args))
        answer = receive(student, question_timeout + 10)  # the student's side enforces the budget itself
        if answer.get("event") != "result":
            raise Lost("unexpected message")
        if "failure" in answer:
            raise QuestionFailed(str(answer["failure"])[:300])
        if "error" in answer:
            raise ProbeFailure(str(answer["error"]))
        return answer.get("value")

    def grade(q: str) -> None:
        try:
            result = {"cases": QuestionTests(q, tests[q]).run(call)}
        except Lost:  # the student's process died while answering: this question loses its points
            send(report, event="question", question=q, error="the notebook's process died while this question was graded")
            raise
        except QuestionFailed as e:
            result = {"error": str(e)}
        except Exception as e:  # our own test file failed to load: the grader's fault, reported as such
            result = {"error": f"grader error: {type(e).__name__}: {e}"[:2000]}
        send(report, event="question", question=q, **result)
        todo.remove(q)

    try:
        while True:
            message = receive(student)
            event = message.get("event")
            if event in ("cell", "cell_timeout"):
                send(report, event=event, index=int(message["index"]), seconds=float(message.get("seconds", 0)))
            elif event == "isolation":
                send(report, event=event, level=str(message.get("level"))[:100], reason=str(message.get("reason"))[:300])
            elif event == "ready":
                q = message.get("question")
                if q in todo:
                    grade(q)
                send(student, event="continue")
            elif event == "cells_done":
                for q in list(todo):
                    grade(q)
                send(report, event="done")
                send(student, event="exit")
                return
            else:
                raise Lost("unexpected message")
    except (Lost, KeyError, TypeError, ValueError) as e:
        send(report, event="lost", reason=str(e))
