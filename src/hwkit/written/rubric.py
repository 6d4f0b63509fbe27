"""The written questions' model answers and rubrics, read from the answer key (solutions/README.md).

Their ids and points are the master notebook's (``questions.json``); ``hwkit lists`` writes those points into
the answer key's headings, so the two agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hwkit.errors import UsageError

STEP = 0.25  # rubric points go in steps of 0.25
HEADING = re.compile(r"^### (q\d+[a-z]) \(([0-9.]+) points?\)(.*)$", flags=re.M)


@dataclass(frozen=True)
class Rubric:
    """One written question of the answer key."""

    qid: str
    points: float  # the notebook's
    title: str
    markdown: str  # the model answer, the rubric and the common wrong answers


def read_rubrics(answer_key: Path, written: dict[str, float]) -> dict[str, Rubric]:
    """The section of the answer key of each ``written`` question (id: points), in the order of ``written``.

    A question without a section gets a rubric that says so (the question is still listed and graded).
    """
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
    rubrics = {}
    for q, points in written.items():
        if q in found:
            rubrics[q] = Rubric(q, points, found[q].title, found[q].markdown)
        else:
            rubrics[q] = Rubric(q, points, "", f"_No section `### {q} (...): ...` in {answer_key.name} yet._")
    return rubrics
