"""A class graded in shards: which shard grades which submission, the command line's refusals, and
three shards merged against one run over the whole folder."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hwkit.cli import main
from hwkit.grade.batch import safe_name
from hwkit.report.gradebook import Gradebook, columns
from hwkit.grade.shards import Shard, mark, parse_shard, select, shard_of
from hwkit.grade.submissions import find_submissions
from hwkit.author.questions import auto_points, load_questions, written_points

ROOT = Path(__file__).resolve().parents[1]
NAMES = ([f"student-{i:03d}.ipynb" for i in range(97)]
         + ["alice smith.ipynb", "alice_smith.ipynb", "section b/ü é.zip", "bad \udcff name.ipynb [1a2b3c4d]"])


def _questions():
    return load_questions(ROOT / "dist" / "vae_hw-autograder.zip")


def auto_ids() -> list[str]:
    return list(auto_points(_questions()))


def written_ids() -> list[str]:
    return list(written_points(_questions()))


def hwkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwkit", *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          timeout=900)


def test_a_names_shard_is_the_same_in_every_process_and_version():
    """Is a submission's shard fixed by its name alone: the same in processes with other hash seeds, and the
    same as when the split was first made (a change would move submissions between shards of one class)?"""
    assert [shard_of(n, 3) for n in ("full-credit.ipynb", "blank.ipynb", "section b/q2d-sign-flipped.ipynb")] == [3, 3, 1]
    code = "import json, sys; from hwkit.grade.shards import shard_of; print(json.dumps([shard_of(n, 5) for n in json.load(sys.stdin)]))"
    here = [shard_of(n, 5) for n in NAMES]
    for seed in ("1", "2"):
        proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(NAMES), capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}, check=True)
        assert json.loads(proc.stdout) == here


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_hold_every_submission_exactly_once(count):
    """Do the N shards together hold every submission, each in exactly one shard, and none left empty here?"""
    subs = [(n, Path(n)) for n in NAMES]
    parts = [select(subs, Shard(k, count)) for k in range(1, count + 1)]
    assert sorted(s for part in parts for s in part) == sorted(subs)
    assert all(parts)  # 101 names: a hash that sent them all to one shard would show
    assert select(subs, None) == subs


def test_adding_a_file_or_another_listing_order_moves_nobody(tmp_path):
    """Does every submission keep its shard when files are added (one sorting first, one in a new folder)
    and when the listing comes in another order?"""
    subs = tmp_path / "subs"
    subs.mkdir()
    for i in range(30):
        (subs / f"student-{i:02d}.ipynb").write_text("{}")

    def assignment() -> dict[str, int]:
        found = find_submissions([subs])
        return {n: k for k in range(1, 5) for n, _ in select(found, Shard(k, 4))}

    before = assignment()
    assert len(before) == 30
    (subs / "0-first.ipynb").write_text("{}")
    (subs / "late section").mkdir()
    (subs / "late section" / "zz.ipynb").write_text("{}")
    after = assignment()
    assert len(after) == 32 and {n: after[n] for n in before} == before
    found = find_submissions([subs])
    for k in range(1, 5):
        assert sorted(select(found[::-1], Shard(k, 4))) == sorted(select(found, Shard(k, 4)))


def test_parse_shard_reads_k_of_n():
    """Is K/N read as shard K (1-based) of N?"""
    assert parse_shard("1/1") == Shard(1, 1) and parse_shard("3/3") == Shard(3, 3) and str(parse_shard("2/10")) == "2/10"


@pytest.mark.parametrize("bad", ["0/3", "4/3", "a/b", "3", "-1/3", "1/0", "", "1/3 ", "\u0661/3", "1/3\x1b[2J"])
def test_bad_shard_gets_one_line_and_exit_2(tmp_path, autograder_zip, bad):
    """Does a bad --shard get one error line and exit code 2, before anything is written?"""
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "a.ipynb").write_text("{}")
    proc = hwkit("grade", tmp_path / "subs", "-o", tmp_path / "out", f"--shard={bad}", "--autograder", autograder_zip)
    assert proc.returncode == 2 and "--shard must be K/N" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "\x1b" not in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("held, asked, message", [
    (Shard(1, 3), "--shard=1/4", "holds the gradebook of shard 1/3, not of shard 1/4"),
    (Shard(1, 3), None, "holds the gradebook of shard 1/3, not of the whole class"),
    (None, "--shard=2/3", "holds the gradebook of the whole class (graded without --shard), not of shard 2/3"),
])
def test_grade_refuses_a_folder_holding_another_cut(tmp_path, autograder_zip, held, asked, message):
    """Does grading into a folder whose gradebook holds another cut of the class (whose rows would stay in it) stop
    with one line and exit code 2, the folder as it was?"""
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    (subs / "a.ipynb").write_text("{}")
    out.mkdir()
    Gradebook(out / "gradebook.csv", auto_ids()).add("b.ipynb", {}, 18, "ok")
    if held:
        mark(out, held, [subs], "namespaces")
    before = tree(out)
    proc = hwkit("grade", subs, "-o", out, *([asked] if asked else []), "--autograder", autograder_zip)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert tree(out) == before


def made_shards(tmp_path: Path, count: int = 3) -> tuple[Path, list[Path]]:
    """A submissions folder and the output folders of `grade --shard K/count` over it, laid out by the grader's own
    Gradebook and shard note (the rows are made up: what merge checks is their names and columns)."""
    subs = tmp_path / "subs"
    (subs / "section b").mkdir(parents=True)
    for name in ("alice.ipynb", "bob.ipynb", "carol.ipynb", "dave.ipynb", "section b/erin.ipynb", "frank.ipynb"):
        (subs / name).write_text("{}")
        (subs / name).with_suffix(".pdf").write_bytes(b"%PDF-1.4 her own")  # sent a PDF: none is made for her
    found = find_submissions([subs])
    folders = []
    for k in range(1, count + 1):
        out = tmp_path / f"shard-{k}"
        out.mkdir()
        mark(out, Shard(k, count), [subs], "namespaces")
        book = Gradebook(out / "gradebook.csv", auto_ids())
        for name, _ in select(found, Shard(k, count)):
            book.add(name, {"q1c": 1.5, "q3b": 2}, 18, "ok")
            (out / "feedback" / safe_name(name)).mkdir(parents=True)
            (out / "feedback" / safe_name(name) / "feedback.txt").write_text(f"Submission: {name}\n")
        folders.append(out)
    return subs, folders


def rows_of(book: Path) -> list[dict[str, str]]:
    with open(book, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def rewrite(book: Path, rows: list[dict[str, str]], header: list[str] | None = None) -> None:
    with open(book, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, header or columns(auto_ids()), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_made_shards_split_the_class(tmp_path):
    """Are the made-up shards what the refusal tests need: three, none empty?"""
    _, folders = made_shards(tmp_path)
    assert [len(rows_of(f / "gradebook.csv")) for f in folders] == [2, 1, 3]


def _no_gradebook(subs, folders, out):
    (folders[1] / "gradebook.csv").unlink()
    return folders


def _not_a_shard(subs, folders, out):
    (folders[1] / "shard.json").unlink()
    return folders


def _in_two_shards(subs, folders, out):
    book = folders[1] / "gradebook.csv"
    rewrite(book, rows_of(book) + rows_of(folders[2] / "gradebook.csv")[:1])
    return folders


def _in_the_wrong_shard(subs, folders, out):
    first, second = folders[0] / "gradebook.csv", folders[1] / "gradebook.csv"
    moved = rows_of(first)
    rewrite(first, moved[1:])
    rewrite(second, rows_of(second) + moved[:1])
    return folders


def _other_columns(subs, folders, out):
    book = folders[2] / "gradebook.csv"
    rewrite(book, rows_of(book), [c for c in columns(auto_ids()) if c != "q6b"])
    return folders


def _shard_missing(subs, folders, out):
    return folders[:2]


def _cut_differently(subs, folders, out):
    mark(folders[2], Shard(3, 4), [subs], "namespaces")
    return folders


def _given_twice(subs, folders, out):
    return [*folders, folders[0]]


def _unfinished_shard(subs, folders, out):
    (subs / "grace.ipynb").write_text("{}")  # added after grading: a single run would have graded it
    return folders


def _out_is_a_shard(subs, folders, out):
    out.rmdir()
    folders[2].rename(out)
    return [*folders[:2], out]


def _out_has_a_gradebook(subs, folders, out):
    (out / "gradebook.csv").write_text("submission,total\nthe TA's,1\n")
    return folders


def _bad_sheet_in_a_shard(subs, folders, out):
    name = rows_of(folders[1] / "gradebook.csv")[0]["submission"]
    (folders[1] / "written_scores.csv").write_text(f"submission,q1a\n{name},9\n")
    return folders


@pytest.mark.parametrize("break_it, message", [
    (_no_gradebook, "shard-2 has no gradebook.csv"),
    (_not_a_shard, "shard-2 has no shard.json: it was not graded with --shard"),
    (_in_two_shards, "is in two shards"),
    (_in_the_wrong_shard, "belongs to another shard"),
    (_other_columns, "shard-3/gradebook.csv has the columns"),
    (_shard_missing, "shard 3/3 is missing"),
    (_cut_differently, "the shards were cut differently"),
    (_given_twice, "shard-1 is given twice"),
    (_unfinished_shard, "1 submission under"),
    (_out_is_a_shard, "is one of the shards"),
    (_out_has_a_gradebook, "gradebook.csv exists: merge into another folder, or add --force"),
    (_bad_sheet_in_a_shard, "shard-2/written_scores.csv, row 2, column q1a: 9 is out of range"),
])
def test_merge_refuses_in_one_line_and_writes_nothing(tmp_path, autograder_zip, capsys, break_it, message):
    """Does each kind of bad merge stop with one line and exit code 2, OUT and every shard as they were?"""
    subs, folders = made_shards(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    folders = break_it(subs, folders, out)
    before = {f: tree(f) for f in [*folders, out] if f.is_dir()}
    capsys.readouterr()
    code = main(["merge", "-o", str(out), *map(str, folders), "--autograder", str(autograder_zip)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert {f: tree(f) for f in before} == before


def test_merge_joins_rows_feedback_and_sheets_with_an_empty_shard(tmp_path, autograder_zip, capsys):
    """Does merge join every row in name order, copy the feedback, take the points of a shard's score sheet into
    the gradebook, cope with a shard that holds nobody, name each shard's confinement where they differ, and leave
    the shards as they were?"""
    subs, folders = made_shards(tmp_path, count=7)
    empty = [f for f in folders if not rows_of(f / "gradebook.csv")]
    assert empty  # six submissions in seven shards
    one = next(f for f in folders if rows_of(f / "gradebook.csv"))
    name = rows_of(one / "gradebook.csv")[0]["submission"]
    (one / "written_scores.csv").write_text(f"submission,q3a,q1a\n{name},1.5,\n")
    mark(folders[2], Shard(3, 7), [subs], "landlock")  # a node of another kind
    before = {f: tree(f) for f in folders}
    out = tmp_path / "out"
    assert main(["merge", "-o", str(out), *map(str, folders), "--autograder", str(autograder_zip)]) == 0
    assert {f: tree(f) for f in folders} == before
    rows = rows_of(out / "gradebook.csv")
    assert [r["submission"] for r in rows] == [n for n, _ in find_submissions([subs])]
    assert list(rows[0]) == [*columns(auto_ids())[:-3], *written_ids(), "total", "possible", "status"]
    mine = next(r for r in rows if r["submission"] == name)
    assert (mine["q3a"], mine["q1a"], mine["total"], mine["possible"]) == ("1.5", "", "5", "25")
    for r in rows:
        assert (out / "feedback" / safe_name(r["submission"]) / "feedback.txt").read_text() == f"Submission: {r['submission']}\n"
    index = (out / "written" / "index.html").read_text(encoding="utf-8")
    assert "6 submissions" in index and not (out / "shard.json").exists()
    assert "confinement: namespaces (shards 1, 2, 4, 5, 6, 7); landlock (shard 3)" in capsys.readouterr().out


KNOWN = {"full-credit.ipynb": "full-credit.ipynb", "blank.ipynb": "blank.ipynb",
         "q1c-epsilon-in-log.ipynb": "q1c-epsilon-in-log.ipynb", "q3b-missing-half.ipynb": "q3b-missing-half.ipynb",
         "q5b-returns-mu.ipynb": "q5b-returns-mu.ipynb", "section b/q2d-sign-flipped.ipynb": "q2d-sign-flipped.ipynb"}


@pytest.fixture(scope="module")
def class_graded(dist: Path, tmp_path_factory):
    """Six known submissions graded once whole, and once as three shards run at once, then merged."""
    work = tmp_path_factory.mktemp("shards")
    subs = work / "subs"
    for name, known in KNOWN.items():
        (subs / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(dist / "known" / known, subs / name)
    timings = {}
    start = time.monotonic()
    proc = hwkit("grade", subs, "-o", work / "whole", "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    timings["whole run (--jobs 2)"] = time.monotonic() - start
    start = time.monotonic()
    runs = [subprocess.Popen([sys.executable, "-m", "hwkit", "grade", str(subs), "-o", str(work / f"shard-{k}"),
                              "--shard", f"{k}/3", "--jobs", "1"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for k in (1, 2, 3)]
    for run in runs:
        _, err = run.communicate(timeout=900)
        assert run.returncode == 0, err
    timings["3 shards at once (--jobs 1 each)"] = time.monotonic() - start
    start = time.monotonic()
    proc = hwkit("merge", "-o", work / "merged", *(work / f"shard-{k}" for k in (1, 2, 3)))
    assert proc.returncode == 0, proc.stderr
    timings["merge"] = time.monotonic() - start
    print("\n" + "\n".join(f"{what}: {s:.1f} s" for what, s in timings.items()))
    return work


@pytest.mark.slow
def test_three_shards_merged_equal_one_run(class_graded):
    """Do three shards, merged, write what one run over the whole folder writes: the same gradebook rows (scores
    and statuses), the same feedback folders, TA pages, PDFs, score sheet and report?"""
    whole, merged = class_graded / "whole", class_graded / "merged"
    shards = [rows_of(class_graded / f"shard-{k}" / "gradebook.csv") for k in (1, 2, 3)]
    assert all(shards) and sum(map(len, shards)) == len(KNOWN)
    rows = rows_of(merged / "gradebook.csv")
    assert [r["submission"] for r in rows] == sorted(KNOWN)
    assert {r["submission"]: r for r in rows} == {r["submission"]: r for r in rows_of(whole / "gradebook.csv")}
    assert {r["submission"]: r["total"] for r in rows}["full-credit.ipynb"] == "18"
    one, joined = tree(whole), tree(merged)
    assert sorted(joined) == sorted(one)
    assert len([p for p in joined if p.startswith("feedback/") and p.endswith("/feedback.txt")]) == len(KNOWN)
    assert len([p for p in joined if p.startswith("written/pdf/") and p.endswith(".pdf")]) == len(KNOWN)
    for path in one:
        # the index names the score sheet by its path, which is OUT's own
        assert joined[path].replace(bytes(merged), b"OUT") == one[path].replace(bytes(whole), b"OUT"), path


@pytest.mark.slow
def test_merge_again_keeps_the_tas_points(class_graded):
    """Is a second merge into the same OUT refused without --force, and with it, are the points a TA entered in
    OUT's score sheet kept and counted?"""
    merged = class_graded / "merged"
    shards = [class_graded / f"shard-{k}" for k in (1, 2, 3)]
    before = tree(merged)
    proc = hwkit("merge", "-o", merged, *shards)
    assert proc.returncode == 2 and "--force" in proc.stderr and tree(merged) == before
    sheet = merged / "written_scores.csv"
    lines = sheet.read_text(encoding="utf-8").splitlines()
    filled = [line if not line.startswith("full-credit.ipynb,") else "full-credit.ipynb,1,1,1,2,1,1" for line in lines]
    sheet.write_text("\n".join(filled) + "\n", encoding="utf-8")
    proc = hwkit("merge", "-o", merged, "--force", *shards)
    assert proc.returncode == 0, proc.stderr
    assert sheet.read_text(encoding="utf-8").splitlines() == filled
    book = {r["submission"]: r for r in rows_of(merged / "gradebook.csv")}
    assert (book["full-credit.ipynb"]["total"], book["full-credit.ipynb"]["possible"]) == ("25", "25")
    assert book["blank.ipynb"]["q3a"] == "" and "/ 25" in (merged / "report.html").read_text(encoding="utf-8")
