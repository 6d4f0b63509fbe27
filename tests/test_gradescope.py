"""The Gradescope autograder, run as Gradescope runs it, always answers with a valid results.json."""

from __future__ import annotations

import os
import zipfile

import jsonschema
import nbformat
import pytest

from hwkit.platforms.gradescope import check
from hwkit.author.known import replace_definition
from hwkit.grade.results import question_scores, validate_results



@pytest.mark.slow
def test_full_credit_and_blank(dist, autograder_zip, points, tmp_path):
    """Through the zip's run_autograder, does full credit get every point and the blank notebook none, and does
    results.json name the confinement (namespaces, where the machine allows them, as here)?"""
    full = check(dist / "known" / "full-credit.ipynb", autograder_zip=autograder_zip, out=tmp_path / "full")
    assert full["score"] == sum(points.values()) and question_scores(full) == points
    assert full["extra_data"]["confinement"] == "namespaces", full.get("extra_data")
    assert (tmp_path / "full" / "stdout").read_text().strip()
    blank = check(dist / "known" / "blank.ipynb", autograder_zip=autograder_zip, out=tmp_path / "blank")
    assert blank["score"] == 0
    visible = {t["visibility"] for t in blank["tests"] if "max_score" in t}
    assert visible == {"visible"}, "scored entries must be visible, or students cannot see their total"
    details = [t for t in blank["tests"] if "details" in t["name"]]
    assert details and {t["visibility"] for t in details} == {"after_published"}


@pytest.mark.slow
def test_exported_zip_with_a_crafted_log_is_graded_from_the_notebook(dist, autograder_zip, tmp_path):
    """Is an uploaded zip graded from its notebook alone, whatever .OTTER_LOG it carries?"""
    upload = tmp_path / "vae_hw_2026_11_24.zip"
    with zipfile.ZipFile(upload, "w") as zf:
        zf.write(dist / "known" / "blank.ipynb", "vae_hw.ipynb")
        zf.writestr(".OTTER_LOG", b"\x80\x04crafted pickle")
    results = check(upload, autograder_zip=autograder_zip, out=tmp_path / "out")
    assert results["score"] == 0


@pytest.mark.parametrize("content, message", [
    (None, "no notebook was found"),
    ("wrong-assignment", "belongs to another assignment"),
    ("not json", "invalid notebook JSON"),
])
def test_ungradable_submissions_get_a_clear_message(dist, autograder_zip, tmp_path, content, message):
    """Do a missing notebook, another assignment's notebook and a broken file each get a valid result and a message?"""
    upload = tmp_path / "upload.zip"
    with zipfile.ZipFile(upload, "w") as zf:
        if content is None:
            zf.writestr("answers.txt", "42")
        elif content == "wrong-assignment":
            nb = nbformat.read(dist / "known" / "full-credit.ipynb", as_version=4)
            nb.metadata["otter"]["assignment_name"] = "hw1"
            zf.writestr("vae_hw.ipynb", nbformat.writes(nb))
        else:
            zf.writestr("vae_hw.ipynb", content)
    results = check(upload, autograder_zip=autograder_zip, out=tmp_path / "out")
    assert results["score"] == 0 and message in results["output"]


@pytest.mark.slow
def test_a_hanging_and_a_crashing_question_are_named(dist, autograder_zip, points, tmp_path, monkeypatch):
    """Does a question that hangs (q5b) or kills its process (q6b) lose only its points, with a message saying so?"""
    monkeypatch.setenv("HWKIT_QUESTION_TIMEOUT", "10")
    nb = nbformat.read(dist / "known" / "full-credit.ipynb", as_version=4)
    replace_definition(nb, "reparameterize", "def reparameterize(mu, logvar):\n    while True:\n        pass\n")
    replace_definition(nb, "train_vae", "def train_vae(model, x_train, epochs=50, batch_size=64, lr=1e-3):\n"
                                        "    import os\n    os._exit(1)\n")
    path = tmp_path / "vae_hw.ipynb"
    nbformat.write(nb, path)
    results = check(path, autograder_zip=autograder_zip, out=tmp_path / "out")
    by_name = {t["name"]: t for t in results["tests"]}
    assert by_name["q5b"]["score"] == 0 and "timeout" in by_name["q5b"]["output"]
    assert by_name["q6b"]["score"] == 0 and "died" in by_name["q6b"]["output"]
    scores = question_scores(results)
    for q in ("q1c", "q2b", "q2c", "q2d", "q3b", "q4b"):
        assert scores[q] == points[q], q


def test_schema_rejects_malformed_results():
    """Does the results schema reject what Gradescope would reject (so validating means something)?"""
    validate_results({"score": 1.0, "tests": [{"name": "q1c", "score": 1, "max_score": 2, "visibility": "visible"}]})
    for bad in ({"tests": [{"name": "q1c"}]},  # no score anywhere
                {"score": 1, "visibility": "sometimes"},
                {"score": "full"},
                {"score": 1, "tests": [{"score": 1, "max_score": -1}]},
                {"score": 1, "scores": []}):
        with pytest.raises(jsonschema.ValidationError):
            validate_results(bad)


@pytest.mark.slow
def test_hidden_tests_are_unreadable_from_the_notebook(dist, autograder_zip, tmp_path):
    """Does a notebook that prints every readable file under the autograder root find no hidden test?"""
    if os.geteuid() != 0:
        pytest.skip("the separate user for student code needs root, as on Gradescope")
    nb = nbformat.read(dist / "known" / "blank.ipynb", as_version=4)
    # The answer is right only if some readable file holds hidden test source: q2b then scores.
    snoop = ("import os\nfound = []\n"
             "tops = [os.environ.get('AUTOGRADER_ROOT', '/autograder'), '/autograder', '/root']\n"
             "tops += [os.path.join('..', d) for d in os.listdir('..') if d.startswith('hwkit-')]\n"
             "for top in tops:\n"
             "    for d, _, files in os.walk(top):\n"
             "        for f in files:\n"
             "            try:\n"
             "                path = os.path.join(d, f)\n"
             "                if os.path.getsize(path) < 2**20 and 'def test_q3b_' + 'values(' in open(path, errors='ignore').read():\n"
             "                    found.append(path)\n"
             "            except OSError:\n"
             "                continue\n"
             "q2b_answer = 'evidence lower bound' if found else 'nothing readable'\n")
    i = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith("q2b_answer"))
    nb.cells[i].source = snoop
    path = tmp_path / "vae_hw.ipynb"
    nbformat.write(nb, path)
    results = check(path, autograder_zip=autograder_zip, out=tmp_path / "out")
    assert results["score"] == 0, "a notebook could read hidden test source"
