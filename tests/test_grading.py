"""The one grading path: budgets in one place, the notebook read and checked the same way for a batch and for Gradescope."""

from __future__ import annotations

import json

import pytest

from hwkit.errors import UsageError
from hwkit.grade.grading import Budgets, Engine, assignment_name, grade_one, read_notebook
from hwkit.grade.submissions import Ungradable


def test_gradescope_budgets_come_from_one_place_and_the_environment():
    """Are Gradescope's budgets the defaults but the submission's, each overridden by its variable?"""
    assert Budgets.for_gradescope({}) == Budgets(submission=Budgets.GRADESCOPE_SUBMISSION)
    assert Budgets.for_gradescope({"HWKIT_QUESTION_TIMEOUT": "10", "HWKIT_MEMORY_MB": "900"}) == \
        Budgets(submission=420.0, question=10.0, memory_mb=900)


@pytest.mark.parametrize("make", [lambda: Budgets(submission=0), lambda: Budgets(cell=-1),
                                  lambda: Budgets.for_gradescope({"HWKIT_CELL_TIMEOUT": "soon"})])
def test_bad_budgets_get_one_line(make):
    with pytest.raises(UsageError) as e:
        make()
    assert "\n" not in str(e.value)


def test_another_assignments_notebook_is_refused_in_a_batch_too(tmp_path, dist):
    """Is a notebook of another assignment a status in a batch, as on Gradescope, and the zip's own name read?"""
    nb = json.loads((dist / "known" / "blank.ipynb").read_text(encoding="utf-8"))
    assignment = assignment_name(dist / "vae_hw-autograder.zip")
    assert assignment == nb["metadata"]["otter"]["assignment_name"]
    nb["metadata"]["otter"]["assignment_name"] = "other_hw"
    (tmp_path / "a.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    with pytest.raises(Ungradable, match="belongs to another assignment"):
        read_notebook(tmp_path / "a.ipynb", assignment)
    never = Engine(lambda notebook: pytest.fail("graded"), lambda: None, "none")
    assert "belongs to another assignment" in grade_one(tmp_path / "a.ipynb", never, assignment).status


def test_a_failing_engine_or_invalid_results_become_a_status(tmp_path, dist):
    """Does anything going wrong in the engine, or results that do not follow Gradescope's format, become the
    submission's status instead of an exception?"""
    from hwkit.grade.runner import RunResult

    path = dist / "known" / "blank.ipynb"

    def boom(notebook):
        raise MemoryError("no room")

    assert grade_one(path, Engine(boom, lambda: None, "none"), "vae_hw").status == "grader error: MemoryError: no room"
    invalid = Engine(lambda nb: RunResult("ok", results={"score": "lots"}), lambda: None, "none")
    assert grade_one(path, invalid, "vae_hw").status.startswith("grader error: ValidationError")
    otters = Engine(lambda nb: RunResult("ok", results={"tests": [{"name": "Public Tests", "output": ""}]}),
                    lambda: None, "none (otter run)", ours=False)
    assert grade_one(path, otters, "vae_hw").status == "ok"  # otter's own results, as otter writes them


@pytest.mark.parametrize("upload", ["answers.txt", "vae_hw.ipynb"])
def test_an_ungradable_upload_on_gradescope_starts_no_grading_server(tmp_path, dist, monkeypatch, upload):
    """Does an upload with no gradable notebook get its message and valid results on Gradescope without a
    grading server being started for it (which takes seconds of the student's time)?"""
    import zipfile

    import hwkit.platforms.gradescope as gradescope
    from hwkit.grade.results import validate_results

    for part in ("source", "submission"):
        (tmp_path / part).mkdir()
    with zipfile.ZipFile(dist / "vae_hw-autograder.zip") as zf:
        zf.extractall(tmp_path / "source")
    (tmp_path / "submission" / upload).write_text("{not json" if upload.endswith(".ipynb") else "42")
    monkeypatch.setattr(gradescope, "open_engine", lambda *a, **k: pytest.fail("a grading server was started"))
    results = gradescope.grade(tmp_path)
    validate_results(results)
    assert results["score"] == 0 and "could not be graded" in results["output"]
    assert results["extra_data"]["confinement"] == "not run"
