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

# The lines of student.py the shipped copy gets its values on (the module does not import the toolkit).
FILLED = ('WRITTEN: tuple[str, ...] = ()', 'NAME = ""', 'TITLE = ""')


def student_module_name(name: str) -> str:
    """The file name of the PDF module shipped beside the notebook of the assignment ``name``."""
    return f"{name}_written.py"


def template_name(name: str) -> str:
    """The Gradescope template of the written answers of the assignment ``name``."""
    return f"{name}-written-template.pdf"


def solutions_names(name: str) -> tuple[str, str]:
    """The reference solutions handed out after the deadline: (HTML page, PDF)."""
    return f"{name}-solutions.html", f"{name}-solutions.pdf"


def student_module(written: list[str], name: str, title: str) -> str:
    """The source of ``<name>_written.py``: ``student.py`` with the written questions, in page order, the
    assignment's name and the homework's title in it."""
    source = Path(student.__file__).read_text(encoding="utf-8")
    values = (f"WRITTEN: tuple[str, ...] = {tuple(written)!r}", f"NAME = {name!r}", f"TITLE = {title!r}")
    for line, value in zip(FILLED, values):
        source, n = re.subn(f"^{re.escape(line)}$", lambda m: value, source, flags=re.M)
        if n != 1:
            raise UsageError(f"{student.__file__}: expected one line `{line}` to fill in")
    return source


def add_student_files(student_dir: Path, extra: Path, questions: list[Question], name: str, title: str) -> None:
    """Put the PDF module, the pinned requirements and the README (its lists filled in) beside the student
    notebook."""
    written = list(written_points(questions))
    (student_dir / student_module_name(name)).write_text(student_module(written, name, title), encoding="utf-8")
    for path in sorted(extra.iterdir()):
        if path.suffix == ".md":
            (student_dir / path.name).write_text(fill(path.read_text(encoding="utf-8"), questions, keep_marks=False),
                                                 encoding="utf-8")
        elif path.is_file():
            shutil.copy2(path, student_dir / path.name)


def write_template(student_notebook: Path, out: Path, written: list[str], title: str) -> list[int]:
    """The Gradescope template: every page of the student's PDF, with the answers left blank."""
    nb = json.loads(student_notebook.read_text(encoding="utf-8"))
    return student.written_pdf(nb, out, template=True, written=written, title=title)


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


def render_solutions(autograder_notebook: Path, out_dir: Path, title: str) -> tuple[Path, Path]:
    """``<name>-solutions.html`` (MathML, no script or CDN) and ``<name>-solutions.pdf`` of the reference."""
    import typst

    html_name, pdf_name = solutions_names(autograder_notebook.stem)
    title = ["--metadata", f"title={title}: reference solutions"]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / autograder_notebook.name
        source.write_text(json.dumps(reference_notebook(autograder_notebook)), encoding="utf-8")
        html = out_dir / html_name
        html.write_text(_pandoc(["-t", "html5", "--standalone", "--mathml", *title], source), encoding="utf-8")
        typ = Path(tmp) / "main.typ"
        markup = _pandoc(["-t", "typst", "--standalone", *title, "-V", "papersize=us-letter"], source)
        typ.write_text(student.fix_math(markup), encoding="utf-8")
        pdf = out_dir / pdf_name
        pdf.write_bytes(typst.compile(str(typ), root=tmp, format="pdf"))
    return html, pdf


def build_written(staged: Path, *, assignment_dir: Path, questions: list[Question], name: str, title: str) -> None:
    """Add the written half to a staged ``dist/``: student files, template, solution handouts."""
    add_student_files(staged / "student", assignment_dir / "student", questions, name, title)
    write_template(staged / "student" / f"{name}.ipynb", staged / template_name(name),
                   list(written_points(questions)), title)
    render_solutions(staged / "autograder" / f"{name}.ipynb", staged / "solutions", title)
