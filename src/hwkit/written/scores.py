"""``written_scores.csv``: the TA's points for the written questions, checked, then added to the gradebook."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from hwkit.errors import UsageError
from hwkit.written.rubric import STEP

SCORES_NAME = "written_scores.csv"


def write_blank_sheet(path: Path, names: list[str], written: list[str]) -> bool:
    """Create the sheet (one row per submission, one empty column per ``written`` question) unless it exists."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["submission", *written])
        writer.writerows([name, *[""] * len(written)] for name in names)
    return True


def _points(cell: str, where: str, full: float) -> float | None:
    text = cell.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value) or not 0 <= value <= full:
        raise UsageError(f"{where}: {text} is out of range (0 to {full:g})")
    if abs(value / STEP - round(value / STEP)) > 1e-9:
        raise UsageError(f"{where}: {text} is not a multiple of {STEP:g}")
    return value


def read_sheet(path: Path, names: list[str], full: dict[str, float]) -> dict[str, dict[str, float | None]]:
    """The points of each submission that has any; a one-line UsageError naming row and column otherwise.

    ``full``: the written questions' points (a column of any other name is an error)."""
    if not path.exists():
        return {}
    known, seen, scores = set(names), set(), {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            if not header or header[0] != "submission":
                raise UsageError(f"{path}, row 1, column 1: the header must start with 'submission'")
            for col, name in enumerate(header[1:], start=2):
                if name not in full:
                    raise UsageError(f"{path}, row 1, column {col}: unknown question {name!r}")
            for row_no, row in enumerate(reader, start=2):
                if not any(c.strip() for c in row):
                    continue
                name = row[0].strip()
                if name not in known:
                    raise UsageError(f"{path}, row {row_no}, column submission: unknown submission {name!r}")
                if name in seen:
                    raise UsageError(f"{path}, row {row_no}, column submission: {name!r} appears twice")
                if len(row) > len(header):
                    raise UsageError(f"{path}, row {row_no}, column {len(header) + 1}: more cells than the header")
                seen.add(name)
                got = {q: _points(cell, f"{path}, row {row_no}, column {q}", full[q])
                       for q, cell in zip(header[1:], row[1:])}
                if any(v is not None for v in got.values()):
                    scores[name] = got
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UsageError(f"{path}: cannot read it ({e})") from None
    return scores


def add_to_rows(rows: list[dict[str, str]], scores: dict[str, dict[str, float | None]],
                auto: dict[str, float], full: dict[str, float]) -> list[dict[str, str]]:
    """Rows with a column per written question (``full``); total and possible recomputed over both parts
    (``auto``: the auto-graded questions' points)."""
    possible = sum(auto.values()) + sum(full.values())
    merged = []
    for row in rows:
        mine = scores.get(row["submission"], {})
        graded = sum(float(row.get(q) or 0) for q in auto)
        written = {q: "" if mine.get(q) is None else f"{mine[q]:g}" for q in full}
        total = graded + sum(v for v in mine.values() if v is not None)
        merged.append({**{k: v for k, v in row.items() if k not in ("total", "possible", "status")}, **written,
                       "total": f"{total:g}", "possible": f"{possible:g}", "status": row.get("status", "")})
    return merged


def write_gradebook(path: Path, rows: list[dict[str, str]]) -> None:
    """Rewrite the gradebook with whatever columns the rows have (written columns included)."""
    if not rows:
        return
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def strip_written(path: Path, auto: dict[str, float], written: list[str]) -> None:
    """Put a gradebook with ``written`` columns back to the ``auto`` (id: points) columns only, so grading
    can resume."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not set(written) & set(reader.fieldnames or []):
            return
        rows = list(reader)
    write_gradebook(path, auto_only(rows, auto))


def auto_only(rows: list[dict[str, str]], auto: dict[str, float]) -> list[dict[str, str]]:
    """Gradebook rows with the ``auto`` (id: points) columns only, ``total`` and ``possible`` of that part."""
    from hwkit.report.gradebook import columns

    restored = [{c: r.get(c, "") for c in columns(list(auto))} for r in rows]
    for r in restored:
        r["total"] = f"{sum(float(r.get(q) or 0) for q in auto):g}"
        r["possible"] = f"{sum(auto.values()):g}"
    return restored
