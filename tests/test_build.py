"""What make assign builds: stable paths, nothing secret in the student folder, a usable zip."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
MARKERS = re.compile(
    r"#\s*(BEGIN|END)\s+(SOLUTION|TESTS?|QUESTION|PROMPT|HIDDEN|IGNORE)\b|#\s*SOLUTION\b|ASSIGNMENT\s+CONFIG"
    r"|TEST\s+CONFIG|hidden:\s*true|hidden=True|~~DELETE",
    flags=re.IGNORECASE,
)


def _student_texts(dist: Path) -> dict[str, str]:
    files = [p for p in (dist / "student").rglob("*") if p.is_file()]
    assert files, "dist/student is empty"
    return {str(p.relative_to(dist)): p.read_bytes().decode("utf-8", errors="replace") for p in files}


def solution_snippets(master: Path) -> list[str]:
    """Distinctive lines of every solution in the master notebook (code and Markdown)."""
    nb = nbformat.read(master, as_version=4)
    snippets, in_md_solution = [], False
    for cell in nb.cells:
        source = cell.source.strip()
        if cell.cell_type == "raw":
            in_md_solution = source.startswith("# BEGIN SOLUTION") or (in_md_solution and not source.startswith("# END SOLUTION"))
            continue
        if cell.cell_type == "markdown" and in_md_solution:
            snippets += [l.strip() for l in source.splitlines() if len(l.strip()) >= 25]
        if cell.cell_type == "code":
            inside = False
            for line in cell.source.splitlines():
                if "# END SOLUTION" in line:
                    inside = False
                if inside or line.rstrip().endswith("# SOLUTION"):
                    code = line.split("# SOLUTION")[0].strip()
                    if len(code) >= 12 and not code.startswith("#"):
                        snippets.append(code)
                if "# BEGIN SOLUTION" in line:
                    inside = True
    return snippets


def zip_test_cases(autograder_zip: Path, *, hidden: bool) -> list[tuple[str, str]]:
    """(name, body) of every hidden (or public) test case in the autograder zip."""
    found = []
    flag = "True" if hidden else "False"
    with zipfile.ZipFile(autograder_zip) as zf:
        for name in (n for n in zf.namelist() if n.startswith("tests/") and n.endswith(".py")):
            source = zf.read(name).decode("utf-8")
            pattern = rf"@test_case\([^)]*hidden={flag}[^)]*\)\s*\ndef (\w+)\((.*?)(?=\n@test_case|\Z)"
            found += [(m.group(1), m.group(2)) for m in re.finditer(pattern, source, re.S)]
    return found


def test_stable_paths(dist):
    """Does make assign leave every product at its documented stable path?"""
    for rel in ["student/vae_hw.ipynb", "student/data/digits.npz", "autograder/vae_hw.ipynb",
                "vae_hw-autograder.zip", "solutions/README.md", "solutions/vae_hw.ipynb"]:
        assert (dist / rel).is_file(), rel
    assert (dist / "student/data/digits.npz").read_bytes() == (ROOT / "assignment/data/digits.npz").read_bytes()


def test_no_markers_in_student_folder(dist):
    """Is the student folder free of every otter assign build marker?"""
    for name, text in _student_texts(dist).items():
        match = MARKERS.search(text)
        assert match is None, f"{name} contains the build marker {match.group(0)!r}"


def test_no_solution_code_in_student_folder(dist):
    """Does no line of any solution (code or written) appear in the student folder?"""
    snippets = solution_snippets(ROOT / "assignment/vae_hw.ipynb")
    assert len(snippets) > 30, "the solution scan found too few lines to be meaningful"
    for name, text in _student_texts(dist).items():
        text = text.replace('\\"', '"')
        leaked = [s for s in snippets if s in text]
        assert not leaked, f"{name} leaks solution lines: {leaked[:3]}"


def test_no_hidden_test_in_student_folder(dist, autograder_zip, points):
    """Does no hidden test (its name or any of its lines) appear in the student folder?"""
    hidden = zip_test_cases(autograder_zip, hidden=True)
    public_lines = {l.strip() for _, body in zip_test_cases(autograder_zip, hidden=False) for l in body.splitlines()}
    assert len(hidden) >= 2 * len(points) - 3, "too few hidden tests were found in the zip"
    for name, text in _student_texts(dist).items():
        text = text.replace('\\"', '"')
        for test_name, body in hidden:
            assert test_name not in text, f"{name} names the hidden test {test_name}"
            lines = [l.strip() for l in body.splitlines() if len(l.strip()) >= 40 and l.strip() not in public_lines]
            leaked = [l for l in lines if l in text]
            assert not leaked, f"{name} contains lines of hidden test {test_name}: {leaked[:2]}"


def test_every_question_has_public_and_hidden_tests(autograder_zip, points):
    """Does every auto-graded question have at least one public and one hidden test?"""
    with zipfile.ZipFile(autograder_zip) as zf:
        for q in points:
            source = zf.read(f"tests/{q}.py").decode("utf-8")
            assert "hidden=False" in source, f"{q} has no public test"
            assert "hidden=True" in source, f"{q} has no hidden test"
            assert "OK_FORMAT = False" in source, f"{q} is not an exception-based test file"


def test_zip_installs_cpu_torch_and_ships_data(autograder_zip):
    """Does the autograder zip pin a CPU-only torch and carry the data file?"""
    with zipfile.ZipFile(autograder_zip) as zf:
        names = set(zf.namelist())
        assert {"run_autograder", "setup.sh", "otter_config.json", "files/data/digits.npz"} <= names
        reqs = zf.read("requirements.txt").decode()
        setup = zf.read("setup.sh").decode()
        assert "download.pytorch.org/whl/cpu" in setup, "setup.sh must add PyTorch's CPU index"
        assert re.search(r"^torch==[0-9.]+\+cpu$", reqs, flags=re.M), "torch must be pinned to a CPU build"
        pinned = [l for l in reqs.splitlines() if l.strip() and not l.startswith("#")]
        assert pinned and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[^\s]+", l) for l in pinned), "every package pinned"
        for banned in ("texlive", "miniforge", "mamba", "playwright install"):
            assert banned not in setup.lower(), f"the image must not install {banned}"


def test_held_out_data_and_secret_ship_only_in_the_autograder(dist, autograder_zip):
    """Are the held-out digits and the per-build secret in the autograder zip, and nowhere a student looks?"""
    with zipfile.ZipFile(autograder_zip) as zf:
        names = set(zf.namelist())
        assert {"files/data/heldout.npz", "secret.key"} <= names
        assert len(zf.read("secret.key")) == 32
    student = {p.name for p in (dist / "student").rglob("*")}
    assert "heldout.npz" not in student and "secret.key" not in student


def test_each_build_draws_a_new_secret_and_each_notebook_its_own_inputs(tmp_path):
    """Do two notebooks get different seed shifts, the same notebook the same one, and another build's key another?"""
    from hwkit.grade.verdict import submission_seed

    a, b = b'{"cells": []}', b'{"cells": [1]}'
    assert submission_seed(b"k" * 32, a) == submission_seed(b"k" * 32, a)
    assert submission_seed(b"k" * 32, a) != submission_seed(b"k" * 32, b)
    assert submission_seed(b"k" * 32, a) != submission_seed(b"j" * 32, a)
