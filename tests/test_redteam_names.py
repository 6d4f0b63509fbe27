"""Names, titles and build folders an instructor gets wrong, and submissions named to collide.

An instructor's mistake gets one line and exit status 2 before anything is built or deleted; nothing of
theirs is removed by a build or `make clean`; a crafted title or name stays data in the shipped module;
two students' files never share a PDF.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from hwkit.grade.grading import read_notebook
from hwkit.grade.submissions import Ungradable
from hwkit.written.handouts import student_module

ROOT = Path(__file__).resolve().parents[1]
SOFTMAX = ROOT / "tests" / "homeworks" / "softmax_hw"


def copy_homework(tmp: Path, name: str, *, rename_references: bool = True) -> Path:
    """The softmax homework copied to ``tmp/hw/``, its notebook renamed ``<name>.ipynb`` with ``name: <name>``
    (and, unless told otherwise, its own references to the old name changed too); the master notebook."""
    folder = tmp / "hw"
    shutil.copytree(SOFTMAX, folder)
    old = folder / "assignment" / "softmax_hw.ipynb"
    text = old.read_text(encoding="utf-8").replace("name: softmax_hw", f"name: {name}")
    if rename_references:
        text = text.replace("softmax_hw", name)
    master = folder / "assignment" / f"{name}.ipynb"
    old.unlink()
    master.write_text(text, encoding="utf-8")
    return master


def assign(master: Path, dist: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwkit", "assign", "--master", str(master), "--dist", str(dist)],
                          cwd=ROOT, capture_output=True, text=True)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("hwkit: error: "), proc.stderr
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- DIST: a folder of the instructor's is never a build folder ---------------------------------------------


def test_build_into_a_folder_of_other_files_deletes_nothing(tmp_path):
    """`make assign DIST=<a folder of the instructor's>` (other homeworks' zips, a solutions/ folder): refused
    in one line, every file left as it was (the build replaced solutions/ and deleted every other
    *-autograder.zip as "stale")."""
    dist = tmp_path / "uploads"
    (dist / "solutions").mkdir(parents=True)
    (dist / "hw1-autograder.zip").write_bytes(b"last term's zip")
    (dist / "hw2-written-template.pdf").write_bytes(b"%PDF")
    (dist / "solutions" / "mine.md").write_text("my notes\n")
    before = snapshot(dist)
    line = one_error_line(assign(SOFTMAX / "assignment" / "softmax_hw.ipynb", dist))
    assert str(dist) in line and "not a build folder" in line
    assert snapshot(dist) == before


def test_build_into_the_homework_folder_itself_deletes_nothing(tmp_path):
    """DIST= the homework's own folder (its assignment/ and solutions/ live there): refused, nothing changed
    (the build replaced its solutions/ with the built answer key, markers stripped)."""
    master = copy_homework(tmp_path, "my_hw")
    before = snapshot(master.parent.parent)
    line = one_error_line(assign(master, master.parent.parent))
    assert "not a build folder" in line
    assert snapshot(master.parent.parent) == before


def make_clean(dist: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "clean", f"DIST={dist}"], cwd=ROOT, capture_output=True,
                          text=True)


def test_make_clean_removes_only_a_build_folder(tmp_path):
    """`make clean DIST=<a folder that holds no build>` removes nothing and says why; a build folder (and a
    missing one) is still cleaned."""
    mine = tmp_path / "homework"
    mine.mkdir()
    (mine / "notes.md").write_text("mine\n")
    proc = make_clean(mine)
    assert proc.returncode != 0 and (mine / "notes.md").is_file()
    assert "not a build folder" in proc.stderr and "Traceback" not in proc.stderr
    assert make_clean(mine / "notes.md").returncode != 0 and (mine / "notes.md").is_file()  # DIST= a file
    built = tmp_path / "dist"
    built.mkdir()
    (built / ".hwkit-dist").write_text("")
    (built / "x-autograder.zip").write_bytes(b"")
    assert make_clean(built).returncode == 0 and not built.exists()
    assert make_clean(tmp_path / "missing").returncode == 0


# --- the master notebook's name --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["my-hw", "my hw", "2hw", "x" * 240])
def test_name_that_is_no_module_name_is_refused(tmp_path, name):
    """A name the shipped `<name>_written.py` cannot be imported by (`from my-hw_written import ...` is a syntax
    error in the student's last cell), or too long for a file name with its suffixes: one line, nothing built."""
    master = copy_homework(tmp_path, name)
    dist = tmp_path / "dist"
    line = one_error_line(assign(master, dist))
    assert "name" in line
    assert not dist.exists() or not [p for p in dist.iterdir() if p.name != ".hwkit-dist"]


def test_notebook_still_naming_the_homework_it_was_copied_from_is_refused(tmp_path):
    """README step 1 forgotten in part: `name: my_hw`, but the first cell still opens `otter.Notebook("softmax_hw.ipynb")`
    and the last imports `softmax_hw_written`, which the build does not ship: students could neither export the
    zip nor the PDF. One line naming what to change, nothing built."""
    master = copy_homework(tmp_path, "my_hw", rename_references=False)
    dist = tmp_path / "dist"
    line = one_error_line(assign(master, dist))
    assert "softmax_hw" in line and "my_hw" in line
    assert not dist.exists() or not [p for p in dist.iterdir() if p.name != ".hwkit-dist"]


# --- the shipped module: a title or name is data ------------------------------------------------------------


@pytest.mark.parametrize("title", [
    "'; import os; os.system('touch /tmp/pwned') #",
    '"""\nimport os\n"""',
    "x\u2028import os",
    "\\'\n__import__('os')",
    "#set page(fill: red) <script>alert(1)</script> $\\frac{1}{$",
])
def test_title_stays_a_string_in_the_shipped_module(title, tmp_path):
    """The title (and name) are written into `<name>_written.py`, code students run: any text stays the value of
    TITLE, one line of the module, and the module runs nothing else on import."""
    import importlib.util

    source = student_module(["q1a"], "hw", title)
    path = tmp_path / "hw_written.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("hw_written", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["hw_written"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["hw_written"]
    assert (module.TITLE, module.NAME, module.WRITTEN) == (title, "hw", ("q1a",))
    assert not Path("/tmp/pwned").exists()
    assert [line for line in source.splitlines() if line.startswith("TITLE = ")] == [f"TITLE = {title!r}"]


# --- a submission's claim of its assignment ------------------------------------------------------------------


@pytest.mark.parametrize("otter_metadata", ["other_hw", ["assignment_name", "other_hw"], 7, None])
def test_odd_otter_metadata_is_a_status_not_a_grader_error(tmp_path, otter_metadata):
    """A notebook whose `metadata.otter` is not a mapping (a string, a list, a number) is the student's data:
    it claims no assignment, so it is read like any other notebook, never a `grader error` of ours."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    data = json.loads(nbformat.writes(nb))
    data["metadata"]["otter"] = otter_metadata
    path = tmp_path / "sub.ipynb"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert json.loads(read_notebook(path, "softmax_hw"))["metadata"]["otter"] == otter_metadata


def test_a_claim_of_another_assignment_is_refused_however_it_is_spelled(tmp_path):
    """`assignment_name` of another homework, or not a string, is refused with a one-line status."""
    for claim in ("vae_hw", ["softmax_hw"], {"x": 1}, "softmax_hw\x1b[2J\nok"):
        nb = nbformat.v4.new_notebook()
        data = json.loads(nbformat.writes(nb))
        data["metadata"]["otter"] = {"assignment_name": claim}
        path = tmp_path / "sub.ipynb"
        path.write_text(json.dumps(data), encoding="utf-8")
        with pytest.raises(Ungradable) as e:
            read_notebook(path, "softmax_hw")
        assert "another assignment" in str(e.value) and "\n" not in str(e.value) and "\x1b" not in str(e.value)


# --- submissions named to collide on the TA's side: written/pdf/ ----------------------------------------------


@pytest.mark.slow  # two PDFs of six pages
def test_two_submissions_whose_names_read_alike_get_a_pdf_each(tmp_path, dist):
    """`alice smith.ipynb` and `alice_smith.ipynb` (or `bob/hw.ipynb` and `bob_hw.ipynb`) are two students: each
    gets its own PDF in written/pdf/, made from its own notebook (they shared one file, the second student's
    answers uploaded for both, or the first one's kept for both)."""
    from hwkit.written import ta

    subs = tmp_path / "subs"
    (subs / "bob").mkdir(parents=True)
    shutil.copy2(dist / "known" / "full-credit.ipynb", subs / "alice smith.ipynb")
    shutil.copy2(dist / "known" / "blank.ipynb", subs / "alice_smith.ipynb")
    out = tmp_path / "out"
    out.mkdir()
    written = ta.prepare([subs], out, answer_key=dist / "solutions" / "README.md",
                         autograder_zip=dist / "vae_hw-autograder.zip", jobs=2)
    ta.finish(written, [])
    pdfs = sorted((out / "written" / "pdf").glob("*.pdf"))
    assert len(pdfs) == 2, pdfs
    from pypdf import PdfReader
    blank = [p for p in pdfs if "(no answer)" in PdfReader(p).pages[0].extract_text()]
    assert len(blank) == 1
    index = (out / "written" / "index.html").read_text(encoding="utf-8")
    assert all(f'pdf/{p.name}' in index for p in pdfs)


def test_a_pdf_beside_belongs_to_the_submission_whose_name_it_starts_with_longest(tmp_path):
    """`bobby.ipynb` beside `bobby-written.pdf` sent a PDF; `bob.ipynb` beside them did not (he was counted as
    having sent one, and got no PDF made for Gradescope)."""
    from hwkit.written.ta import own_pdf

    import zipfile

    for name in ("bob.ipynb", "bobby.ipynb", "bobby-written.pdf", "carol (1).pdf"):
        (tmp_path / name).write_bytes(b"")
    with zipfile.ZipFile(tmp_path / "carol.zip", "w") as zf:
        zf.writestr("hw.ipynb", "{}")
    assert not own_pdf(tmp_path / "bob.ipynb")
    assert own_pdf(tmp_path / "bobby.ipynb")
    assert own_pdf(tmp_path / "carol.zip")
