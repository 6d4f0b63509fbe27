"""The gradebook: one CSV row per submission, written as each finishes, and a printed table."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

from .questions import QUESTIONS
from .text import one_line

COLUMNS = ["submission", *QUESTIONS, "total", "possible", "status"]


class Gradebook:
    """Append-only ``gradebook.csv``; rows already present are kept and can be skipped on re-runs."""

    def __init__(self, path: Path, *, force: bool = False):
        self.path = path
        self._lock = threading.Lock()
        self.rows: dict[str, dict[str, str]] = {}
        if path.exists() and not force:
            with open(path, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    if row.get("submission"):
                        self.rows[row["submission"]] = row
        with open(path, "w", newline="", encoding="utf-8") as f:  # rewrite: header + kept rows
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows.values())

    def add(self, submission: str, scores: dict[str, float], possible: float, status: str) -> dict[str, str]:
        row = {"submission": submission, **{q: _fmt(scores.get(q, 0.0)) for q in QUESTIONS},
               "total": _fmt(sum(scores.get(q, 0.0) for q in QUESTIONS)), "possible": _fmt(possible),
               "status": one_line(status, 500)}
        with self._lock:
            self.rows[submission] = row
            with open(self.path, "a", newline="", encoding="utf-8") as f:
                csv.DictWriter(f, COLUMNS).writerow(row)
                f.flush()
        return row


def _fmt(x: float) -> str:
    return f"{x:g}"


def format_table(rows: list[dict[str, str]]) -> str:
    """A fixed-width table of gradebook rows, with the class mean of each question at the bottom."""
    headers = ["submission", *QUESTIONS, "total", "status"]
    body = [[one_line(r["submission"], 300), *(one_line(r[q], 20) for q in QUESTIONS),
             one_line(f'{r["total"]}/{r["possible"]}', 30), one_line(r["status"], 500)] for r in rows]
    if rows:
        means = [f"{sum(float(r[q]) for r in rows) / len(rows):.2f}" for q in QUESTIONS]
        total = sum(float(r["total"]) for r in rows) / len(rows)
        body.append(["(mean)", *means, f"{total:.2f}", ""])
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *body)]
    widths[0] = min(widths[0], 48)
    line = lambda cells: "  ".join(str(c)[: widths[i]].ljust(widths[i]) for i, c in enumerate(cells)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, body)])
