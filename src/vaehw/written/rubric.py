"""The written questions' points, model answers and rubrics, read from the answer key (solutions/README.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from .student import WRITTEN

STEP = 0.25  # rubric points go in steps of 0.25
HEADING = re.compile(r"^### (q\d+[a-z]) \(([0-9.]+) points?\)(.*)$", flags=re.M)


@dataclass(frozen=True)
class Rubric:
    """One written question of the answer key."""

    qid: str
    points: float
    title: str
    markdown: str  # the model answer, the rubric and the common wrong answers


def read_rubrics(answer_key: Path) -> dict[str, Rubric]:
    """Every written question's section of the answer key, in question order."""
    try:
        text = answer_key.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read the answer key {answer_key}: {e.strerror}") from None
    found: dict[str, Rubric] = {}
    matches = list(HEADING.finditer(text))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[m.end():end]
        body = body[: m2.start()] if (m2 := re.search(r"^## ", body, flags=re.M)) else body
        found[m.group(1)] = Rubric(m.group(1), float(m.group(2)), m.group(3).lstrip(": ").strip(), body.strip())
    missing = [q for q in WRITTEN if q not in found]
    if missing:
        raise UsageError(f"{answer_key}: no section for {', '.join(missing)} (expected '### q1a (1 point): ...')")
    return {q: found[q] for q in WRITTEN}
