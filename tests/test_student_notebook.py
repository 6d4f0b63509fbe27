"""The student notebook, filled in with the solutions, runs top to bottom and exports a gradable zip."""

from __future__ import annotations

import ast
import shutil
import zipfile

import nbformat
import pytest
from nbclient import NotebookClient

from hwkit.grade.batch import grade_submissions
from hwkit.author.known import replace_definition, top_level_nodes

pytestmark = pytest.mark.slow

ANSWERS = ["kl_divergence", "q2b_answer", "q2c_answer", "elbo", "kl_normal_standard", "q4b_answer",
           "reparameterize", "VAE", "negative_elbo", "train_vae"]


def solution_definitions(autograder_nb: nbformat.NotebookNode) -> dict[str, str]:
    """The source of each answer's top-level definition in the full-credit notebook."""
    found = {}
    for cell, node in top_level_nodes(autograder_nb):
        names = [getattr(node, "name", None)] + [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        for name in set(names) & set(ANSWERS):
            found[name] = ast.get_source_segment(cell.source, node)
    return found


@pytest.fixture(scope="module")
def filled_run(dist, tmp_path_factory):
    """Fill the student notebook with the solutions and run it with a real Jupyter kernel."""
    work = tmp_path_factory.mktemp("student-run")
    shutil.copytree(dist / "student", work, dirs_exist_ok=True)
    nb = nbformat.read(work / "vae_hw.ipynb", as_version=4)
    definitions = solution_definitions(nbformat.read(dist / "autograder" / "vae_hw.ipynb", as_version=4))
    assert sorted(definitions) == sorted(ANSWERS)
    for name, code in definitions.items():
        replace_definition(nb, name, code)
    nbformat.write(nb, work / "vae_hw.ipynb")  # what the student saves before exporting
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    return work, nb


def _outputs(nb, needle: str) -> str:
    cells = [c for c in nb.cells if c.cell_type == "code" and needle in c.source]
    assert cells, needle
    return "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for c in cells for o in c.outputs)


def test_filled_notebook_runs_without_errors(filled_run):
    """Does every cell of the filled student notebook run without an error?"""
    _, nb = filled_run
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]


def test_public_checks_pass_and_training_shows(filled_run):
    """Do the public checks pass, and do the training, curve and image cells produce output?"""
    _, nb = filled_run
    for q in ["q1c", "q2b", "q2c", "q2d", "q3b", "q4b", "q5b", "q6a", "q6b"]:
        assert "passed" in _outputs(nb, f'grader.check("{q}")'), q
    assert "test NELBO" in _outputs(nb, "history = train_vae(model, x_train, epochs=50)")
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 2, "the training curve, latent scatter and digit grids should be drawn"


def test_exported_zip_is_graded_full_marks(filled_run, autograder_zip, points, tmp_path):
    """Is the zip from the export cell (made without LaTeX) graded with full marks by make grade?"""
    work, _ = filled_run
    zips = list(work.glob("vae_hw_*.zip"))
    assert len(zips) == 1, "the export cell did not make exactly one zip"
    with zipfile.ZipFile(zips[0]) as zf:
        assert "vae_hw.ipynb" in zf.namelist()
    (row,) = grade_submissions([zips[0]], out=tmp_path, autograder_zip=autograder_zip, jobs=1, timeout=600, progress=None)
    assert row["status"] == "ok" and float(row["total"]) == sum(points.values())
