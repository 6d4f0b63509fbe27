"""The auto-graded questions, in notebook order. Ids are stable once released."""

QUESTIONS: tuple[str, ...] = ("q1c", "q2b", "q2c", "q2d", "q3b", "q4b", "q5b", "q6a", "q6b")


def question_points(autograder_zip) -> dict[str, float]:
    """Points of each auto-graded question, read from the test files of the autograder (zip or folder)."""
    import re
    import zipfile

    from pathlib import Path

    def read(name: str) -> str:
        if Path(autograder_zip).is_dir():
            return (Path(autograder_zip) / name).read_text(encoding="utf-8")
        with zipfile.ZipFile(autograder_zip) as zf:
            return zf.read(name).decode("utf-8")

    return {q: float(re.search(r"^points = ([0-9.]+)$", read(f"tests/{q}.py"), flags=re.M).group(1)) for q in QUESTIONS}
