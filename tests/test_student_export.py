"""A student's notebook, end to end: a fresh environment with only dist/student/requirements.txt, a real kernel,
the full-credit answers; every cell runs, the public checks pass, and out come the zip (graded full marks) and the
written answers' PDF."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from pypdf import PdfReader

from hwkit.author.known import replace_definition, top_level_nodes
from hwkit.grade.batch import grade_submissions
from hwkit.written import student

pytestmark = pytest.mark.slow

PDF_NAME = "vae_hw-written.pdf"  # what the shipped vae_hw_written.py writes
KEY_PHRASES = {"q1a": "with the conventions", "q1b": "strict concavity", "q2a": "dropping it can only decrease",
               "q3a": "KL of independent components adds up", "q4a": "A variance must be positive",
               "q5a": "backpropagation cannot pass through the sampling step"}

RUN = """import sys
from nbclient import NotebookClient
import nbformat
nb = nbformat.read("vae_hw.ipynb", as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
nbformat.write(nb, "executed.ipynb")
"""


ANSWERS = ["kl_divergence", "q2b_answer", "q2c_answer", "elbo", "kl_normal_standard", "q4b_answer",
           "reparameterize", "VAE", "negative_elbo", "train_vae"]


def solution_definitions(reference: nbformat.NotebookNode) -> dict[str, str]:
    """The source of each code answer's top-level definition in the reference notebook."""
    found = {}
    for cell, node in top_level_nodes(reference):
        names = [getattr(node, "name", None)] + [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        for name in set(names) & set(ANSWERS):
            found[name] = ast.get_source_segment(cell.source, node)
    assert sorted(found) == sorted(ANSWERS)
    return found


def student_venv(dist: Path) -> Path:
    """A virtual environment with exactly the student requirements, cached under dist/ by their hash."""
    requirements = dist / "student" / "requirements.txt"
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    venv = dist / f".student-venv-{key}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(requirements)], check=True)
        (venv / ".complete").touch()
    return python


def filled_student_notebook(dist: Path, folder: Path, written: list[str]) -> None:
    """The student folder as handed out, with every answer (code and written) of the reference filled in."""
    shutil.copytree(dist / "student", folder, dirs_exist_ok=True)
    nb = nbformat.read(folder / "vae_hw.ipynb", as_version=4)
    reference = nbformat.read(dist / "autograder" / "vae_hw.ipynb", as_version=4)
    for name, code in solution_definitions(reference).items():
        replace_definition(nb, name, code)
    answers = student.read_questions(json.loads(nbformat.writes(reference)))
    current = None
    for cell in nb.cells:
        if m := student.PROMPT.search(cell.source):
            current = m.group(1)
        elif current in written and cell.cell_type == "markdown" and student._is_answer_cell(cell):
            cell.source = answers[current].text
    nbformat.write(nb, folder / "vae_hw.ipynb")


@pytest.fixture(scope="module")
def exported(dist, tmp_path_factory, written):
    python = student_venv(dist)
    folder = tmp_path_factory.mktemp("student-export")
    filled_student_notebook(dist, folder, written)
    proc = subprocess.run([str(python), "-c", RUN], cwd=folder, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder, nbformat.read(folder / "executed.ipynb", as_version=4)


def test_export_cell_makes_zip_and_pdf_in_a_fresh_environment(exported):
    """Does the last cell, in an environment of exactly the student requirements, write the zip and the PDF?"""
    folder, nb = exported
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    assert len(list(folder.glob("vae_hw_*.zip"))) == 1
    last = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert "Wrote vae_hw-written.pdf (6 pages)" in last and "no answer yet" not in last, last


def _outputs(nb, needle: str) -> str:
    cells = [c for c in nb.cells if c.cell_type == "code" and needle in c.source]
    assert cells, needle
    return "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for c in cells for o in c.outputs)


def test_public_checks_pass_and_training_shows(exported, points):
    """Do the public checks pass, and do the training, curve and image cells produce output?"""
    _, nb = exported
    for q in points:
        assert "passed" in _outputs(nb, f'grader.check("{q}")'), q
    assert "test NELBO" in _outputs(nb, "history = train_vae(model, x_train, epochs=50)")
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 2, "the training curve, latent scatter and digit grids should be drawn"


def test_exported_zip_is_graded_full_marks(exported, autograder_zip, points, tmp_path):
    """Is the zip from the export cell (made without LaTeX) graded with full marks by make grade?"""
    folder, _ = exported
    zips = list(folder.glob("vae_hw_*.zip"))
    assert len(zips) == 1, "the export cell did not make exactly one zip"
    with zipfile.ZipFile(zips[0]) as zf:
        assert "vae_hw.ipynb" in zf.namelist()
    (row,) = grade_submissions([zips[0]], out=tmp_path, autograder_zip=autograder_zip, jobs=1, timeout=600, progress=None)
    assert row["status"] == "ok" and float(row["total"]) == sum(points.values())


def test_exported_pdf_page_k_is_question_k_with_math_typeset(exported, dist, written):
    """Does page k hold written question k, its model answer's words, no raw $ or \\frac; and does the
    template put the same question on each page?"""
    folder, _ = exported
    pages = [re.sub(r"\s+", " ", p.extract_text()) for p in PdfReader(folder / PDF_NAME).pages]
    template = [re.sub(r"\s+", " ", p.extract_text()) for p in PdfReader(dist / "vae_hw-written-template.pdf").pages]
    assert len(pages) == len(template) == len(written)
    for qid, page, blank in zip(written, pages, template):
        assert page.startswith(f"VAE homework: written answers {qid}") and blank.startswith(
            f"VAE homework: written answers {qid}")
        assert KEY_PHRASES[qid] in page and KEY_PHRASES[qid] not in blank
        assert "$" not in page and "\\frac" not in page


def test_first_cell_installs_nothing_when_everything_is_there(exported):
    """Does the first code cell leave a complete environment alone (no pip output, no install)?"""
    _, nb = exported
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "requirements.txt" in first.source and first.outputs and "pip" not in str(first.outputs)


def test_preflight_with_the_shipped_module(exported, dist, tmp_path, written):
    """In the student environment, does the shipped vae_hw_written.py name two unanswered written questions and a
    code answer left at `...`, and mark "(no answer)" on exactly those two pages?"""
    folder, _ = exported
    python = student_venv(dist)
    work = tmp_path / "student"
    shutil.copytree(folder, work)
    nb = nbformat.read(work / "vae_hw.ipynb", as_version=4)
    current = None
    for cell in nb.cells:
        if m := student.PROMPT.search(cell.source):
            current = m.group(1)
        elif current in ("q2a", "q5a") and student._is_answer_cell(cell):
            cell.source = student.PLACEHOLDER if current == "q2a" else ""
        elif current == "q6b" and cell.cell_type == "code" and student._is_answer_cell(cell):
            cell.source = "def train_vae(model, x_train, epochs=50, batch_size=64, lr=1e-3):\n    ...\n"
    nbformat.write(nb, work / "vae_hw.ipynb")
    proc = subprocess.run([str(python), "vae_hw_written.py"], cwd=work, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    warning = next(line for line in proc.stdout.splitlines() if line.startswith("Warning"))
    assert "q2a, q5a, q6b" in warning, warning
    pages = [p.extract_text() for p in PdfReader(work / PDF_NAME).pages]
    assert [student.NO_ANSWER in p for p in pages] == [q in ("q2a", "q5a") for q in written]


def test_first_cell_installs_what_is_missing(exported, dist):
    """Where a package of requirements.txt is missing (pypdf here, as on Colab), does the first code cell install
    it, and then run on?"""
    folder, _ = exported
    python = student_venv(dist)
    marker = python.parent.parent / ".complete"
    marker.unlink()  # if this test dies half-way, the next run builds the environment again
    subprocess.run([str(python), "-m", "pip", "uninstall", "--yes", "--quiet", "pypdf"], check=True)
    first = next(c for c in nbformat.read(folder / "vae_hw.ipynb", as_version=4).cells if c.cell_type == "code")
    proc = subprocess.run([str(python), "-c", first.source], cwd=folder, capture_output=True, text=True, timeout=900)
    check = subprocess.run([str(python), "-c", "import pypdf"], capture_output=True)
    if check.returncode == 0:
        marker.touch()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "torch.Size([1200, 64])" in proc.stdout and check.returncode == 0
