"""Gradescope's results.json from per-case results, and the feedback a student reads."""

from __future__ import annotations

from .questions import QUESTIONS

# Public tests are visible at once; hidden ones once grades are published (students always see the total).
PUBLIC, HIDDEN = "visible", "after_published"


def _entry(name: str, cases: list[dict], visibility: str) -> dict:
    failed = [c for c in cases if not c["passed"]]
    output = "All tests passed." if not failed else "\n".join(f"{c['name']}: {c['message']}" for c in failed)
    return {"name": name, "score": float(sum(c["points"] for c in cases if c["passed"])),
            "max_score": float(sum(c["points"] for c in cases)), "visibility": visibility, "output": output}


def gradescope_results(cases: dict[str, list[dict]], points: dict[str, float], status: str) -> dict:
    """Results in Gradescope's format: per question, a public entry and a hidden entry."""
    tests = []
    for q in QUESTIONS:
        qcases = cases.get(q)
        if not qcases:  # never graded: the whole question is lost, and says why
            tests.append({"name": q, "score": 0.0, "max_score": points[q], "visibility": PUBLIC,
                          "output": f"Not graded: {status}"})
            continue
        for hidden, label, visibility in ((False, "public tests", PUBLIC), (True, "hidden tests", HIDDEN)):
            part = [c for c in qcases if c["hidden"] == hidden]
            if part:
                tests.append(_entry(f"{q} ({label})", part, visibility))
    score = sum(t["score"] for t in tests)
    output = "Graded." if status == "ok" else f"Graded with problems: {status}"
    return {"score": score, "output": output, "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def messages_from_cases(cases: dict[str, list[dict]]) -> dict[str, list[str]]:
    """Per question, one line per failed test case: its name and its message."""
    return {q: [f"{c['name']} ({'hidden' if c['hidden'] else 'public'}): {c['message']}" for c in cs if not c["passed"]]
            for q, cs in cases.items()}
