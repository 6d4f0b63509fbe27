"""Which checks fail most often: read the failed test cases out of each submission's results.json.

Two formats are understood. The fork engine writes entries whose names start with the question
id (``"q3b (hidden tests)"``, ``"q3b public tests"``, ``"q3b hidden tests: details"``) and whose
``output`` has one line per failed test, ``"test_name: Type: message"`` (see ``results``).
``otter run`` writes one entry per question (``"q3b"``) whose ``output`` has a block per test case
(``"q3b - 2 result:"``) with ``"Test case failed"`` and ``"Error at line N in test q3b:"`` followed
by the failing line of the test and the exception; there a check is named by its case
(``"q3b - 2"``), as otter names it, and otter's ``"Public Tests"`` entry, which repeats cases, is
skipped. Entries for questions that were never graded (``"Not graded: ..."``) hold no failed check:
the status column already says why.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .text import one_line

# "test_name: ExceptionType: message", as results.py writes a failed case (continuation lines do not match)
_FORK_LINE = re.compile(r"^([A-Za-z_]\w*): ([A-Za-z_]\w*: ?.*)$")
OTTER_PUBLIC_SUMMARY = "Public Tests"
_OTTER_BLOCK = re.compile(r"^[ \t]*(\S.*?) result:[ \t]*$", re.M)
_OTTER_ERROR = re.compile(r"Error at line \d+ in test [^\n]*:\n[^\n]*\n[ \t]*([^\n]+)")


@dataclass(frozen=True)
class FailedCheck:
    """One failed test case of one submission."""

    question: str  # "q3b"
    check: str  # "test_q3b_values" (fork engine) or "q3b - 2" (otter run)
    message: str  # first line of the exception, "AssertionError: ..."


@dataclass
class CheckCount:
    """How many submissions failed one check, and what it said most often."""

    question: str
    check: str
    failures: int  # number of submissions in which this check failed
    message: str  # the most frequent message of this check


def _otter_failures(question: str, output: str) -> list[FailedCheck]:
    heads = list(_OTTER_BLOCK.finditer(output))
    found = []
    for head, nxt in zip(heads, heads[1:] + [None]):
        block = output[head.end(): nxt.start() if nxt else len(output)]
        if "Test case failed" not in block and "Error at line" not in block:
            continue
        error = _OTTER_ERROR.search(block)
        found.append(FailedCheck(one_line(question, 40), one_line(head.group(1), 100),
                                 one_line(error.group(1), 500) if error else "failed"))
    return found


def failed_checks(results: dict, questions: list[str]) -> list[FailedCheck]:
    """Every failed test case of the auto-graded ``questions`` in one results.json (either engine's format),
    in file order."""
    found: list[FailedCheck] = []
    tests = results.get("tests", []) if isinstance(results, dict) else []
    for test in tests if isinstance(tests, list) else []:
        if not isinstance(test, dict) or test.get("name") == OTTER_PUBLIC_SUMMARY:
            continue
        question = str(test.get("name", "")).split(" ")[0].rstrip(":")
        if question not in questions:  # the written answers' entry holds the student's own text, not checks
            continue
        output = str(test.get("output", ""))
        if _OTTER_BLOCK.search(output):
            found += _otter_failures(question, output)
            continue
        for line in output.splitlines():
            m = _FORK_LINE.match(line)
            if m:
                found.append(FailedCheck(one_line(question, 40), one_line(m.group(1), 100), one_line(m.group(2), 500)))
    return found


def count_failed_checks(folders: list[Path], questions: list[str]) -> list[CheckCount]:
    """Count in how many submissions each check failed, most frequent first.

    ``folders`` are feedback folders; each may hold a ``results.json`` (a submission that could not be
    run has none). A check that fails twice in one submission (a public and a hidden part) counts once.
    """
    counts: Counter[tuple[str, str]] = Counter()
    messages: dict[tuple[str, str], Counter[str]] = {}
    for folder in dict.fromkeys(folders):
        path = folder / "results.json"
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for f in {(f.question, f.check): f for f in failed_checks(results, questions)}.values():
            counts[f.question, f.check] += 1
            messages.setdefault((f.question, f.check), Counter())[f.message] += 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [CheckCount(q, c, n, messages[q, c].most_common(1)[0][0]) for (q, c), n in ranked]
