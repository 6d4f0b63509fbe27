"""`hwkit lists`: every list of questions and point table in the prose around the homework, written from the
master notebook's questions.

A generated part sits between ``<!-- questions:NAME -->`` and ``<!-- /questions -->`` (invisible in rendered
Markdown), NAME saying what goes there (see ``PARTS``). The answer key's headings (``### q1a (1 point): ...``,
``### q1b: ... (2 points)``) and its tables of tests (``| `test_q1b_values` | 0.5 | hidden | ...``) get their
points and visibility from the notebook too. ``hwkit lists`` rewrites the tracked files (``make assign``
runs it first); ``hwkit assign`` fills the copies it builds (student notebook and README, answer key) from
the notebook it builds, without the markers.
"""

from __future__ import annotations

import re
from pathlib import Path

from hwkit.errors import UsageError
from hwkit.author.questions import AUTO, WRITTEN, Question

MARK = re.compile(r"<!-- questions:([a-z-]+) -->(.*?)<!-- /questions -->", flags=re.S)
# Inside a notebook's JSON a part is one line of plain text (ids, numbers, commas): rewritten in place.
NOTEBOOK_PART = re.compile(r'(<!-- questions:([a-z-]+) -->)([^"\\<\n]*)(<!-- /questions -->)')
WRITTEN_HEADING = re.compile(r"^(### (q\d+[a-z]) \()[0-9.]+ points?(\).*)$", flags=re.M)
AUTO_HEADING = re.compile(r"^(### (q\d+[a-z]): .*\()[0-9.]+ points?(\))$", flags=re.M)
TEST_ROW = re.compile(r"^(\| `(test_\w+)` \| )[0-9.]+( \| )(public |hidden )?", flags=re.M)
# The tracked files holding generated parts, relative to the homework's folder (the master notebook's parent's
# parent), besides the master notebooks of its assignment/ folder.
TRACKED = ("README.md", "solutions/README.md", "assignment/student/README.md")
ANSWER_KEY = "solutions/README.md"


def _g(x: float) -> str:
    return f"{round(x, 6):g}"


def _points(x: float, unit: bool = True) -> str:
    return f"{_g(x)} point{'s' * (x != 1)}" if unit else _g(x)


def _auto_table(auto: list[Question]) -> str:
    """Per auto-graded question: points of its public tests, of its hidden tests, in all."""
    public = [sum(t.points for t in q.tests if not t.hidden) for q in auto]
    hidden = [sum(t.points for t in q.tests if t.hidden) for q in auto]
    lines = ["| Question | Public points | Hidden points | Total |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {q.qid} | {_g(p)} | {_g(h)} | {_g(q.points)} |" for q, p, h in zip(auto, public, hidden)]
    lines.append(f"| **Total** | **{_g(sum(public))}** | **{_g(sum(hidden))}** | **{_g(sum(q.points for q in auto))}** |")
    return "\n\n" + "\n".join(lines) + "\n\n"


PARTS = {
    "auto": lambda auto, written: ", ".join(q.qid for q in auto),  # q1b, q2a, ...
    "written": lambda auto, written: ", ".join(q.qid for q in written),  # q1a, q2a, ...
    "auto-points": lambda auto, written: _g(sum(q.points for q in auto)),  # auto-graded points
    "written-points": lambda auto, written: _g(sum(q.points for q in written)),  # written points
    "total-points": lambda auto, written: _g(sum(q.points for q in auto + written)),  # all points
    "written-count": lambda auto, written: str(len(written)),  # pages of the PDF
    # q1a (1 point), q1b (1), ...: the questions to create on Gradescope
    "written-with-points": lambda auto, written: ", ".join(
        f"{q.qid} ({_points(q.points, i == 0)})" for i, q in enumerate(written)),
    # page 1 is q1a, page 2 q1b, ...: the PDF's fixed pages
    "written-pages": lambda auto, written: ", ".join(
        f"page {i} {'is ' * (i == 1)}{q.qid}" for i, q in enumerate(written, 1)),
    "auto-table": lambda auto, written: _auto_table(auto),
}


def part(name: str, questions: list[Question]) -> str:
    """The text of the generated part ``name``."""
    if name not in PARTS:
        raise UsageError(f"unknown generated part <!-- questions:{name} --> (known: {', '.join(PARTS)})")
    return PARTS[name]([q for q in questions if q.kind == AUTO], [q for q in questions if q.kind == WRITTEN])


def fill(text: str, questions: list[Question], *, keep_marks: bool = True) -> str:
    """``text`` with every generated part written afresh (without its markers unless ``keep_marks``)."""
    def one(m: re.Match) -> str:
        body = part(m.group(1), questions)
        return f"<!-- questions:{m.group(1)} -->{body}<!-- /questions -->" if keep_marks else body.strip("\n")

    return MARK.sub(one, text)


def fill_answer_key(text: str, questions: list[Question], *, keep_marks: bool = True) -> str:
    """The answer key with its parts, its headings' points and its test tables' points and visibility afresh."""
    by_id = {q.qid: q for q in questions}
    tests = {t.name: t for q in questions for t in q.tests}

    def heading(kind: str):
        def one(m: re.Match) -> str:
            q = by_id.get(m.group(2))
            return f"{m.group(1)}{_points(q.points)}{m.group(3)}" if q and q.kind == kind else m.group(0)
        return one

    def row(m: re.Match) -> str:  # a test's points, and its visibility where the table has a column for it
        t = tests.get(m.group(2))
        visibility = ("hidden " if t.hidden else "public ") if t and m.group(4) else ""
        return f"{m.group(1)}{_g(t.points)}{m.group(3)}{visibility}" if t else m.group(0)

    text = WRITTEN_HEADING.sub(heading(WRITTEN), text)
    text = AUTO_HEADING.sub(heading(AUTO), text)
    return fill(TEST_ROW.sub(row, text), questions, keep_marks=keep_marks)


def fill_notebook_json(text: str, questions: list[Question]) -> str:
    """A notebook's JSON text with its generated parts (one line each) written afresh; nothing else changes."""
    return NOTEBOOK_PART.sub(lambda m: m.group(1) + part(m.group(2), questions) + m.group(4), text)


def update(root: Path, questions: list[Question], *, check: bool = False) -> list[Path]:
    """Rewrite the generated parts of the ``TRACKED`` files and master notebooks under ``root``; return those
    that changed (with ``check``, those that would change, leaving them as they are)."""
    stale = []
    for rel in (*TRACKED, *sorted(p.relative_to(root).as_posix() for p in (root / "assignment").glob("*.ipynb"))):
        path = root / rel
        if not path.is_file():
            continue
        old = path.read_text(encoding="utf-8")
        if rel.endswith(".ipynb"):
            new = fill_notebook_json(old, questions)
        elif rel == ANSWER_KEY:
            new = fill_answer_key(old, questions)
        else:
            new = fill(old, questions)
        if new != old:
            stale.append(path)
            if not check:
                path.write_text(new, encoding="utf-8")
    return stale


def fill_built_notebook(path: Path, questions: list[Question]) -> None:
    """Write the generated parts of a notebook otter assign built (its Markdown cells), without markers."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "markdown" and MARK.search(cell.source):
            cell.source, changed = fill(cell.source, questions, keep_marks=False), True
    if changed:
        nbformat.write(nb, path)
