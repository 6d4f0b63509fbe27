"""What `hwkit assign` adds for the written questions: the student's files, the template, the solutions."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from hwkit.errors import UsageError
from hwkit.author.lists import fill
from hwkit.author.questions import Question, written_points
from hwkit.written import student

STUDENT_MODULE = "vae_hw_written.py"
TEMPLATE_NAME = "vae_hw-written-template.pdf"
# The line of student.py the shipped copy gets the written questions on (the module does not import the toolkit).
WRITTEN_LINE = re.compile(r"^WRITTEN: tuple\[str, \.\.\.\] = \(\)$", flags=re.M)


def student_module(written: list[str]) -> str:
    """The source of ``vae_hw_written.py``: ``student.py`` with the written questions, in page order, in it."""
    source, n = WRITTEN_LINE.subn(f"WRITTEN: tuple[str, ...] = {tuple(written)!r}",
                                  Path(student.__file__).read_text(encoding="utf-8"))
    if n != 1:
        raise UsageError(f"{student.__file__}: expected one line `WRITTEN: tuple[str, ...] = ()` to fill in")
    return source


def add_student_files(student_dir: Path, extra: Path, questions: list[Question]) -> None:
    """Put the PDF module, the pinned requirements and the README (its lists filled in) beside the student
    notebook."""
    written = list(written_points(questions))
    (student_dir / STUDENT_MODULE).write_text(student_module(written), encoding="utf-8")
    for path in sorted(extra.iterdir()):
        if path.suffix == ".md":
            (student_dir / path.name).write_text(fill(path.read_text(encoding="utf-8"), questions, keep_marks=False),
                                                 encoding="utf-8")
        elif path.is_file():
            shutil.copy2(path, student_dir / path.name)


def write_template(student_notebook: Path, out: Path, written: list[str]) -> list[int]:
    """The Gradescope template: every page of the student's PDF, with the answers left blank."""
    nb = json.loads(student_notebook.read_text(encoding="utf-8"))
    return student.written_pdf(nb, out, template=True, written=written)


def reference_notebook(autograder_notebook: Path) -> dict:
    """The reference notebook as handed out with the solutions: answers in place, no placeholders, no outputs."""
    nb = json.loads(autograder_notebook.read_text(encoding="utf-8"))
    cells = []
    for cell in nb["cells"]:
        tags = (cell.get("metadata") or {}).get("tags", [])
        if "otter_answer_cell" in tags and "".join(cell["source"]).strip() == student.PLACEHOLDER:
            continue
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items() if k == "tags"}
        if cell["cell_type"] == "code":  # no otter markers in a handout
            lines = "".join(cell["source"]).splitlines()
            lines = [re.sub(r"\s*# SOLUTION$", "", x) for x in lines if not re.match(r"\s*# (BEGIN|END) SOLUTION", x)]
            cell["source"] = "\n".join(lines)
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
    nb["cells"] = cells
    return nb


def _pandoc(args: list[str], source: Path) -> str:
    import pypandoc

    proc = subprocess.run([pypandoc.get_pandoc_path(), "--quiet", "-f", "ipynb", *args, str(source)],
                          capture_output=True, text=True, check=True)
    return proc.stdout


def render_solutions(autograder_notebook: Path, out_dir: Path) -> tuple[Path, Path]:
    """``vae_hw-solutions.html`` (MathML, no script or CDN) and ``vae_hw-solutions.pdf`` of the reference."""
    import typst

    title = ["--metadata", "title=VAE homework: reference solutions"]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "vae_hw.ipynb"
        source.write_text(json.dumps(reference_notebook(autograder_notebook)), encoding="utf-8")
        html = out_dir / "vae_hw-solutions.html"
        html.write_text(_pandoc(["-t", "html5", "--standalone", "--mathml", *title], source), encoding="utf-8")
        typ = Path(tmp) / "main.typ"
        markup = _pandoc(["-t", "typst", "--standalone", *title, "-V", "papersize=us-letter"], source)
        typ.write_text(student.fix_math(markup), encoding="utf-8")
        pdf = out_dir / "vae_hw-solutions.pdf"
        pdf.write_bytes(typst.compile(str(typ), root=tmp, format="pdf"))
    return html, pdf


def build_written(staged: Path, *, assignment_dir: Path, questions: list[Question]) -> None:
    """Add the written half to a staged ``dist/``: student files, template, solution handouts."""
    add_student_files(staged / "student", assignment_dir / "student", questions)
    write_template(staged / "student" / "vae_hw.ipynb", staged / TEMPLATE_NAME,
                   list(written_points(questions)))
    render_solutions(staged / "autograder" / "vae_hw.ipynb", staged / "solutions")
