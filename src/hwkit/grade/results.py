"""Gradescope's results.json from per-case results, and the feedback a student reads."""

from __future__ import annotations

import json
from importlib import resources

from hwkit.grade.runner import CaseResult

# Scores are visible at once, so that students see their total before grades are published
# (Gradescope hides the total while any scored test is hidden). What the hidden tests found is
# in a zero-point entry per question, shown once grades are published.
VISIBLE, AFTER_PUBLISHED = "visible", "after_published"


def _failed_lines(cases: list[CaseResult]) -> str:
    failed = [c for c in cases if not c.passed]
    return "All tests passed." if not failed else "\n".join(f"{c.name}: {c.message}" for c in failed)


def _scored(name: str, cases: list[CaseResult], output: str) -> dict:
    return {"name": name, "score": float(sum(c.points for c in cases if c.passed)),
            "max_score": float(sum(c.points for c in cases)), "visibility": VISIBLE, "output": output}


def gradescope_results(cases: list[CaseResult], points: dict[str, float], status: str,
                       problems: dict[str, str] | None = None) -> dict:
    """Results in Gradescope's format: per question (those of ``points``, in its order), public tests,
    hidden score, hidden details. A question without cases was never graded: ``problems`` says why."""
    problems = problems or {}
    tests = []
    for q in points:
        qcases = [c for c in cases if c.question == q]
        if not qcases:  # never graded: the whole question is lost, and the student is told why
            why = problems.get(q) or status
            tests.append({"name": q, "score": 0.0, "max_score": points[q], "visibility": VISIBLE,
                          "output": f"Not graded: {why}"})
            continue
        public = [c for c in qcases if not c.hidden]
        hidden = [c for c in qcases if c.hidden]
        if public:
            tests.append(_scored(f"{q} public tests", public, _failed_lines(public)))
        if hidden:
            tests.append(_scored(f"{q} hidden tests", hidden, "What the hidden tests found is shown once grades are published."))
            tests.append({"name": f"{q} hidden tests: details", "visibility": AFTER_PUBLISHED, "output": _failed_lines(hidden)})
    score = sum(t.get("score", 0.0) for t in tests)
    output = "Graded." if status == "ok" else f"Graded with problems: {status}"
    return {"score": score, "output": output, "visibility": VISIBLE, "stdout_visibility": "hidden", "tests": tests}


def written_answers_entry(notebook: bytes, written: list[str], limit: int = 10_000) -> dict:
    """A zero-point, visible entry showing the answers to the ``written`` questions as submitted (graded by
    hand from the PDF)."""
    from hwkit.written.student import NO_ANSWER, read_questions

    try:
        questions = read_questions(json.loads(notebook))
    except Exception:  # whatever the notebook holds, the results must still be written
        questions = {}
    parts = []
    for q in written:
        text = questions[q].text if q in questions else ""
        text = text if len(text) <= limit else text[:limit] + "\n\n... (cut here; your PDF holds all of it)"
        parts.append(f"**{q}**\n\n{text.replace('<', '&lt;') if text.strip() else NO_ANSWER}")
    return {"name": "Written answers (graded by hand from your PDF)", "visibility": VISIBLE,
            "output_format": "md", "output": "\n\n---\n\n".join(parts)}


def failure_results(message: str) -> dict:
    """A valid results.json for a submission that could not be graded at all."""
    return {"score": 0.0, "output": message, "visibility": VISIBLE, "stdout_visibility": "hidden", "tests": []}


def validate_results(results: dict) -> None:
    """Raise jsonschema.ValidationError unless ``results`` follows Gradescope's published format."""
    import jsonschema

    schema = json.loads(resources.files("hwkit.grade").joinpath("gradescope_results.schema.json").read_text())
    jsonschema.validate(results, schema)


def question_scores(results: dict) -> dict[str, float]:
    """Per-question points of a results.json written by gradescope_results (entries named "q1b ...")."""
    totals: dict[str, float] = {}
    for t in results.get("tests", []):
        if "score" in t:
            q = t["name"].split()[0]
            totals[q] = totals.get(q, 0.0) + t["score"]
    return totals
