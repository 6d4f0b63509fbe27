"""Which checks fail most often: counted from the case records each submission's feedback folder holds.

``hwkit grade`` writes ``cases.json`` beside ``feedback.txt``: every graded test case as a
``runner.CaseResult`` record (question, name, points, hidden, passed, message). A submission that could
not be run has no case, and its status already says why.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hwkit.grade.batch import CASES
from hwkit.grade.runner import CaseResult
from hwkit.text import one_line


@dataclass
class CheckCount:
    """How many submissions failed one check, and what it said most often."""

    question: str
    check: str
    failures: int  # number of submissions in which this check failed
    message: str  # the most frequent message of this check


def read_cases(folder: Path) -> list[CaseResult]:
    """The case records of one feedback folder (none if it has no readable ``cases.json``)."""
    try:
        records = json.loads((folder / CASES).read_text(encoding="utf-8"))
        return [CaseResult(**r) for r in records]
    except (OSError, ValueError, TypeError):
        return []


def count_failed_checks(folders: list[Path], questions: list[str]) -> list[CheckCount]:
    """Count in how many submissions each check of ``questions`` failed, most frequent first.

    A check that fails twice in one submission counts once.
    """
    counts: Counter[tuple[str, str]] = Counter()
    messages: dict[tuple[str, str], Counter[str]] = {}
    for folder in dict.fromkeys(folders):
        failed = {(c.question, c.name): c for c in read_cases(folder) if not c.passed and c.question in questions}
        for key, c in failed.items():
            counts[key] += 1
            messages.setdefault(key, Counter())[one_line(c.message, 500)] += 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [CheckCount(q, c, n, messages[q, c].most_common(1)[0][0]) for (q, c), n in ranked]
