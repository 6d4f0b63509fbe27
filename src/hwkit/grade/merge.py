"""`hwkit merge`: join the output folders of `hwkit grade --shard K/N` into what one run over the class writes.

Everything is read and checked before anything is written. A folder without gradebook.csv or
shard.json, shards cut differently or one missing, a submission in two shards or in a shard that is
not its own, gradebooks with other columns, submissions the shards did not all grade, a bad score
sheet, or an OUT already holding a gradebook (without ``force``) stop the merge with one line, OUT
untouched. The shard folders are only read.
"""

from __future__ import annotations

import csv
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from hwkit.errors import UsageError
from hwkit.grade.batch import safe_name
from hwkit.report.gradebook import columns
from hwkit.author.questions import auto_points as auto_points_of, load_questions, written_points as written_points_of
from hwkit.report.class_report import write_report
from hwkit.grade.shards import Marker, MARKER, mark, read_marker
from hwkit.grade.submissions import find_submissions
from hwkit.text import one_line
from hwkit.written import scores as sheet
from hwkit.written import ta as written_ta


@dataclass
class ShardOut:
    """One shard's output folder, as read."""

    folder: Path
    marker: Marker
    rows: list[dict[str, str]]  # auto-graded columns only (written points come back through the sheet)


@dataclass
class Merged:
    """What the merge wrote: the rows in name order, every question's points, the confinement, the report."""

    rows: list[dict[str, str]]
    points: dict[str, float]
    confinement: str
    report: Path


def _name(name: str) -> str:
    return repr(one_line(name, 120))


def read_shard(folder: Path, auto: dict[str, float], written: list[str]) -> ShardOut:
    """A shard's marker and gradebook rows; a UsageError if the folder is not a shard's output."""
    if not folder.is_dir():
        raise UsageError(f"no such folder: {folder}")
    book = folder / "gradebook.csv"
    if not book.is_file():
        raise UsageError(f"{folder} has no gradebook.csv: not an output folder of `hwkit grade`")
    marker = read_marker(folder)
    if marker is None:
        raise UsageError(f"{folder} has no {MARKER}: it was not graded with --shard K/N")
    try:
        with open(book, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = [c for c in reader.fieldnames or [] if c not in written]
            rows = {r["submission"]: r for r in reader if r.get("submission")}  # as Gradebook reads it: last row wins
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UsageError(f"{book}: cannot read it ({e})") from None
    expected = columns(list(auto))
    if header != expected:
        raise UsageError(f"{book} has the columns {', '.join(header) or '(none)'}, not {', '.join(expected)}: "
                         "graded by another version of the homework?")
    try:
        return ShardOut(folder, marker, sheet.auto_only(list(rows.values()), auto))
    except ValueError:
        raise UsageError(f"{book}: a score is not a number") from None


def _check_split(shards: list[ShardOut]) -> None:
    """The shards are one cut of the class: the same N, every K once, each row in its own shard, no row twice."""
    counts = {s.marker.shard.count for s in shards}
    if len(counts) > 1:
        cuts = ", ".join(f"{s.folder} is shard {s.marker.shard}" for s in shards)
        raise UsageError(f"the shards were cut differently: {cuts}")
    [count] = counts
    seen: dict[int, Path] = {}
    for s in shards:
        if s.marker.shard.index in seen:
            raise UsageError(f"{seen[s.marker.shard.index]} and {s.folder} are both shard {s.marker.shard}")
        seen[s.marker.shard.index] = s.folder
    missing = [f"{k}/{count}" for k in range(1, count + 1) if k not in seen]
    if missing:
        several = len(missing) > 1
        raise UsageError(f"shard{'s' if several else ''} {', '.join(missing)} {'are' if several else 'is'} missing: "
                         "give every shard's folder")
    owner: dict[str, Path] = {}
    for s in shards:
        for row in s.rows:
            name = row["submission"]
            if name in owner:
                raise UsageError(f"{_name(name)} is in two shards: {owner[name]} and {s.folder}")
            owner[name] = s.folder
    for s in shards:
        for row in s.rows:
            if not s.marker.shard.holds(row["submission"]):
                raise UsageError(f"{_name(row['submission'])} is in {s.folder}/gradebook.csv (shard {s.marker.shard}), "
                                 "but it belongs to another shard")


def _submission_paths(shards: list[ShardOut], given: list[Path] | None) -> list[Path]:
    if given:
        return given
    recorded = {tuple(s.marker.submissions) for s in shards}
    if len(recorded) > 1:
        raise UsageError("the shards were graded from different paths (see their shard.json): give --submissions")
    return list(recorded.pop())


def _check_names(shards: list[ShardOut], paths: list[Path], given: bool) -> None:
    """Every submission under ``paths`` is in one shard's gradebook, and every row is one of them."""
    try:
        found = {n for n, _ in find_submissions(paths)}
    except UsageError as e:
        raise UsageError(f"{e} (the submissions the shards recorded; give --submissions)" if not given else str(e)) from None
    where = {r["submission"]: s.folder for s in shards for r in s.rows}
    missing = sorted(found - where.keys())
    if missing:
        several = len(missing) > 1
        raise UsageError(f"{len(missing)} submission{'s' if several else ''} under {', '.join(map(str, paths))} "
                         f"{'are' if several else 'is'} in no shard's gradebook (first: {_name(missing[0])}): "
                         "is a shard unfinished?")
    extra = sorted(where.keys() - found)
    if extra:
        raise UsageError(f"{_name(extra[0])} (in {where[extra[0]]}) is not under {', '.join(map(str, paths))}")


def _confinement(shards: list[ShardOut]) -> str:
    """The shards' confinement mode, or each mode with its shards where machines differed."""
    modes: dict[str, list[int]] = {}
    for s in sorted(shards, key=lambda s: s.marker.shard.index):
        modes.setdefault(s.marker.confinement or "not recorded", []).append(s.marker.shard.index)
    if len(modes) == 1:
        return next(iter(modes))
    return "; ".join(f"{mode} (shard{'s' if len(ks) > 1 else ''} {', '.join(map(str, ks))})" for mode, ks in modes.items())


def _joined_sheet(shards: list[ShardOut], out: Path, names: list[str], answer_key: Path,
                  full: dict[str, float]) -> list[list[str]] | None:
    """The rows of one score sheet joining the shards' sheets, if any shard's holds points and OUT has none.

    Each shard's sheet is checked first (a bad one stops the merge); OUT's own sheet, the TA's, is kept."""
    if not answer_key.is_file():
        return None
    if (out / sheet.SCORES_NAME).exists():
        sheet.read_sheet(out / sheet.SCORES_NAME, names, full)
        return None
    points: dict[str, dict[str, float | None]] = {}
    for s in shards:
        points.update(sheet.read_sheet(s.folder / sheet.SCORES_NAME, [r["submission"] for r in s.rows], full))
    if not points:
        return None
    cell = lambda v: "" if v is None else f"{v:g}"
    return [["submission", *full], *([n, *(cell(points.get(n, {}).get(q)) for q in full)] for n in names)]


def _copy_written(shards: list[ShardOut], out: Path) -> None:
    """The shards' PDFs (their times kept, so none is made again) and parsed answers, into OUT/written/."""
    pdfs, cache = out / "written" / "pdf", out / "written" / ".cache"
    for s in shards:
        for r in s.rows:
            pdf = s.folder / "written" / "pdf" / f"{written_ta.file_name(r['submission'])}.pdf"
            if pdf.is_file():
                pdfs.mkdir(parents=True, exist_ok=True)
                shutil.copy2(pdf, pdfs / pdf.name)
        for entry in sorted((s.folder / "written" / ".cache").glob("*.json")):  # named by a hash of the answer
            if not (cache / entry.name).exists():
                cache.mkdir(parents=True, exist_ok=True)
                shutil.copy2(entry, cache / entry.name)


def merge_outputs(folders: list[Path], *, out: Path, submissions: list[Path] | None, autograder_zip: Path,
                  jobs: int = 1, force: bool = False) -> Merged:
    """Join the shards' output ``folders`` into ``out``: gradebook, feedback, written answers, report."""
    try:
        questions = load_questions(autograder_zip)
    except (zipfile.BadZipFile, KeyError, AttributeError, OSError, ValueError, TypeError):
        raise UsageError(f"not a readable autograder zip: {autograder_zip} (run `make assign` first)") from None
    resolved = [f.resolve() for f in folders]
    for i, f in enumerate(resolved):
        if f in resolved[:i]:
            raise UsageError(f"{folders[i]} is given twice")
    if out.resolve() in resolved:
        raise UsageError(f"{out} is one of the shards: merge into another folder")
    if (out / "gradebook.csv").exists() and not force:
        raise UsageError(f"{out / 'gradebook.csv'} exists: merge into another folder, or add --force to replace it")
    auto_points, written_full = auto_points_of(questions), written_points_of(questions)
    shards = [read_shard(f, auto_points, list(written_full)) for f in folders]
    _check_split(shards)
    paths = _submission_paths(shards, submissions)
    _check_names(shards, paths, bool(submissions))
    rows = sorted((r for s in shards for r in s.rows), key=lambda r: r["submission"])  # find_submissions' order
    names = [r["submission"] for r in rows]
    answer_key = autograder_zip.parent / "solutions" / "README.md"
    joined = _joined_sheet(shards, out, names, answer_key, written_full)

    out.mkdir(parents=True, exist_ok=True)
    mark(out, None, paths, None)
    for s in shards:
        for r in s.rows:
            source = s.folder / "feedback" / safe_name(r["submission"])
            if source.is_dir():
                shutil.copytree(source, out / "feedback" / source.name, symlinks=True, dirs_exist_ok=True)
    _write_gradebook(out / "gradebook.csv", rows, list(auto_points))
    if answer_key.is_file():
        _copy_written(shards, out)
    if joined:
        with open(out / sheet.SCORES_NAME, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(joined)
    written = written_ta.prepare(paths, out, answer_key=answer_key, autograder_zip=autograder_zip, jobs=jobs)
    rows, written_points = written_ta.finish(written, rows)
    points = {**auto_points, **written_points}
    confinement = _confinement(shards)
    return Merged(rows, points, confinement, write_report(rows, out, points, confinement))


def _write_gradebook(path: Path, rows: list[dict[str, str]], auto: list[str]) -> None:
    """The gradebook with every row (a header alone if there is none), written whole and then renamed."""
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns(auto))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def main(*, shards: list[Path], out: Path, submissions: list[Path] | None, autograder: Path, jobs: int,
         force: bool) -> None:
    """`hwkit merge`: join the shards' folders into ``out``, then print what was written where."""
    from hwkit.report.class_report import print_outcome

    merged = merge_outputs(shards, out=out, submissions=submissions, autograder_zip=autograder, jobs=jobs, force=force)
    print_outcome(merged.rows, merged.points, list(auto_points_of(load_questions(autograder))), merged.confinement, out,
                  merged.report)
