"""The gradebook: one CSV row per submission, written as each finishes, and a printed table."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

from hwkit.text import one_line


def columns(questions: list[str]) -> list[str]:
    """The gradebook's columns: one per auto-graded question, in notebook order, between name and total."""
    return ["submission", *questions, "total", "possible", "status"]


class Gradebook:
    """Append-only ``gradebook.csv``; rows already present are kept and can be skipped on re-runs.

    ``questions``: the auto-graded questions of the autograder in use. Rows of a gradebook with other
    columns (made with another build's questions) are not kept: those submissions are graded again.
    """

    def __init__(self, path: Path, questions: list[str], *, force: bool = False):
        self.path, self.questions, self.columns = path, list(questions), columns(questions)
        self._lock = threading.Lock()
        self.rows: dict[str, dict[str, str]] = {}
        if path.exists() and not force:
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                for row in reader if reader.fieldnames == self.columns else []:
                    if row.get("submission"):
                        self.rows[row["submission"]] = row
        with open(path, "w", newline="", encoding="utf-8") as f:  # rewrite: header + kept rows
            writer = csv.DictWriter(f, self.columns)
            writer.writeheader()
            writer.writerows(self.rows.values())

    def sort(self, order: list[str]) -> None:
        """Rewrite the file with its rows in ``order`` (names not in it last, as they were): rows are appended
        as submissions finish, in no fixed order; the finished gradebook is in the order of the folder."""
        rank = {name: i for i, name in enumerate(order)}
        with self._lock:
            self.rows = dict(sorted(self.rows.items(), key=lambda item: rank.get(item[0], len(rank))))
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, self.columns)
                writer.writeheader()
                writer.writerows(self.rows.values())
            tmp.replace(self.path)

    def add(self, submission: str, scores: dict[str, float], possible: float, status: str) -> dict[str, str]:
        row = {"submission": submission, **{q: _fmt(scores.get(q, 0.0)) for q in self.questions},
               "total": _fmt(sum(scores.get(q, 0.0) for q in self.questions)), "possible": _fmt(possible),
               "status": one_line(status, 500)}
        with self._lock:
            self.rows[submission] = row
            with open(self.path, "a", newline="", encoding="utf-8") as f:
                csv.DictWriter(f, self.columns).writerow(row)
                f.flush()
        return row


def _fmt(x: float) -> str:
    return f"{x:g}"


def format_table(rows: list[dict[str, str]], questions: list[str]) -> str:
    """A fixed-width table of gradebook rows, with the class mean of each question at the bottom."""
    headers = ["submission", *questions, "total", "status"]
    body = [[one_line(r["submission"], 300), *(one_line(r[q], 20) for q in questions),
             one_line(f'{r["total"]}/{r["possible"]}', 30), one_line(r["status"], 500)] for r in rows]
    if rows:
        means = [f"{sum(float(r[q]) for r in rows) / len(rows):.2f}" for q in questions]
        total = sum(float(r["total"]) for r in rows) / len(rows)
        body.append(["(mean)", *means, f"{total:.2f}", ""])
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *body)]
    widths[0] = min(widths[0], 48)
    line = lambda cells: "  ".join(str(c)[: widths[i]].ljust(widths[i]) for i, c in enumerate(cells)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, body)])
