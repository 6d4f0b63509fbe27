"""The auto-graded questions, in notebook order. Ids are stable once released."""

QUESTIONS: tuple[str, ...] = ("q1c", "q2b", "q2c", "q2d", "q3b", "q4b", "q5b", "q6a", "q6b")


def question_points(autograder_zip) -> dict[str, float]:
    """Points of each auto-graded question, read from the test files in the autograder zip."""
    import re
    import zipfile

    points: dict[str, float] = {}
    with zipfile.ZipFile(autograder_zip) as zf:
        for q in QUESTIONS:
            source = zf.read(f"tests/{q}.py").decode("utf-8")
            points[q] = float(re.search(r"^points = ([0-9.]+)$", source, flags=re.M).group(1))
    return points
