"""How the class did: ``OUT/report.html`` (figures embedded) and a one-screen summary to print."""

from __future__ import annotations

import base64
import html
import io
import math
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hwkit.report.failures import CheckCount, count_failed_checks
from hwkit.grade.batch import safe_name
from hwkit.text import one_line

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TOP_CHECKS = 15  # failing checks listed in the report
TOP_STATUSES = 5  # statuses listed in the printed summary
MESSAGE_CHARS = 200


@dataclass
class QuestionStat:
    """How the class did on one question."""

    question: str
    points: float
    mean: float  # mean score over every row, ungradable submissions included
    pass_rate: float  # fraction of rows with full marks


def _num(value: str | float | None) -> float:
    """A gradebook cell as a number; an empty or malformed cell counts 0."""
    try:
        return float(value)  # type: ignore[arg-type]  (None is caught below)
    except (TypeError, ValueError):
        return 0.0


def question_stats(rows: list[dict[str, str]], points: dict[str, float]) -> list[QuestionStat]:
    """Per question (in the order of ``points``): mean score and the fraction with full marks."""
    stats = []
    for q, full in points.items():
        scores = [_num(r.get(q)) for r in rows]
        mean = statistics.fmean(scores) if scores else 0.0
        rate = sum(s >= full - 1e-9 for s in scores) / len(scores) if scores else 0.0
        stats.append(QuestionStat(q, full, mean, rate))
    return stats


def status_counts(rows: list[dict[str, str]]) -> list[tuple[str, int]]:
    """Each distinct status with its number of submissions, most frequent first."""
    counts = Counter(r.get("status", "") for r in rows)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _totals(rows: list[dict[str, str]]) -> list[float]:
    return [_num(r.get("total")) for r in rows]


def summary_text(rows: list[dict[str, str]], points: dict[str, float], confinement: str | None = None) -> str:
    """A plain-text summary that fits on one screen: totals, each question, statuses, confinement mode."""
    possible = sum(points.values())
    if not rows:
        return "No submissions."
    totals = _totals(rows)
    lines = ([f"confinement: {confinement}"] if confinement else []) + [f"{len(rows)} submissions   total: mean {statistics.fmean(totals):.2f} / {possible:g}, "
             f"median {statistics.median(totals):g}, min {min(totals):g}, max {max(totals):g}",
             "", f"{'question':<10}{'points':>7}{'mean':>8}{'full marks':>12}"]
    for s in question_stats(rows, points):
        lines.append(f"{s.question:<10}{s.points:>7g}{s.mean:>8.2f}{s.pass_rate:>11.0%}")
    lines += ["", "status"]
    statuses = status_counts(rows)
    for status, n in statuses[:TOP_STATUSES]:
        lines.append(f"{n:>5}  {one_line(status, 70)}")
    if len(statuses) > TOP_STATUSES:
        rest = sum(n for _, n in statuses[TOP_STATUSES:])
        lines.append(f"{rest:>5}  ({len(statuses) - TOP_STATUSES} other statuses; see gradebook.csv)")
    return "\n".join(lines)


def _png(fig: "Figure") -> str:
    """The figure as a base64 PNG ``<img>`` source."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _histogram(totals: list[float], possible: float) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    top = max(possible, max(totals, default=0.0), 1.0)
    width = math.ceil(top / 40)  # bins centred on whole points, so full marks get a bar of their own
    edges = [width * (i - 0.5) for i in range(math.ceil(top / width) + 2)]
    ax.hist(totals, bins=edges, color="#4C72B0", edgecolor="white")
    ax.set_xlabel(f"total (out of {possible:g})")
    ax.set_ylabel("submissions")
    ax.set_title("Totals")
    return _png(fig)


def _question_chart(stats: list[QuestionStat]) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2))
    ax = fig.add_subplot()
    x = range(len(stats))
    mean_share = [100 * s.mean / s.points if s.points else 100.0 for s in stats]
    ax.bar([i - 0.2 for i in x], mean_share, width=0.4, label="mean score (% of points)", color="#4C72B0")
    ax.bar([i + 0.2 for i in x], [100 * s.pass_rate for s in stats], width=0.4, label="full marks (% of class)",
           color="#55A868")
    ax.set_xticks(list(x), [s.question for s in stats])
    ax.set_ylim(0, 105)
    ax.set_ylabel("%")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize="small", frameon=False)
    ax.set_title("Per question")
    return _png(fig)


def _table(headers: list[str], body: list[list[object]], row_classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    out = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
    for i, cells in enumerate(body):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(one_line(c, 2000))}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _short(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
th{background:#f3f3f3}tr.problem td{background:#fff3e0}img{max-width:100%}.note{color:#666}"""


def render_report(rows: list[dict[str, str]], points: dict[str, float], checks: list[CheckCount],
                  confinement: str | None = None) -> str:
    """The report page as one self-contained HTML string."""
    import matplotlib

    matplotlib.use("Agg")  # no display: figures are rendered to PNG only
    possible = sum(points.values())
    totals = _totals(rows)
    stats = question_stats(rows, points)
    n = len(rows)
    mean = f"{statistics.fmean(totals):.2f}" if totals else "-"
    median = f"{statistics.median(totals):g}" if totals else "-"
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Grading report</title>"
             f"<style>{STYLE}</style></head><body>",
             "<h1>Grading report</h1>",
             f"<p>{n} submissions; total: mean {mean} / {possible:g}, median {median}.</p>",
             f"<p>Confinement of the submissions' processes: {html.escape(confinement or 'not recorded')}.</p>",
             "<h2>Totals</h2>", f'<img alt="histogram of totals" src="{_histogram(totals, possible)}">',
             "<h2>Per question</h2>",
             _table(["question", "points", "mean score", "mean (% of points)", "full marks (% of class)"],
                    [[s.question, f"{s.points:g}", f"{s.mean:.2f}",
                      f"{100 * s.mean / s.points:.0f}%" if s.points else "-", f"{s.pass_rate:.0%}"] for s in stats]),
             f'<img alt="mean score and full-marks rate per question" src="{_question_chart(stats)}">',
             "<h2>Most frequent failing checks</h2>"]
    if checks:
        parts.append(_table(["question", "check", "submissions failing", "% of class", "most frequent message"],
                            [[c.question, c.check, c.failures, f"{c.failures / n:.0%}" if n else "-", _short(c.message)]
                             for c in checks[:TOP_CHECKS]]))
        if len(checks) > TOP_CHECKS:
            parts.append(f'<p class="note">{len(checks) - TOP_CHECKS} other failing checks not shown.</p>')
    else:
        parts.append('<p class="note">No failed checks in any results.json.</p>')
    parts += ["<h2>Status</h2>", _table(["status", "submissions"], [[s, c] for s, c in status_counts(rows)]),
              "<h2>Gradebook</h2>",
              _table(["submission", *points, "total", "possible", "status"],
                     [[r.get("submission", ""), *(r.get(q, "") for q in points), r.get("total", ""),
                       r.get("possible", ""), r.get("status", "")] for r in rows],
                     ["" if r.get("status") == "ok" else "problem" for r in rows]),
              "</body></html>\n"]
    return "\n".join(parts)


def write_report(rows: list[dict[str, str]], out: Path, points: dict[str, float], confinement: str | None = None) -> Path:
    """Write ``out/report.html`` from the gradebook rows and the case records in ``out/feedback/*/``; return its path."""
    folders = [out / "feedback" / safe_name(r.get("submission", "")) for r in rows]
    page = render_report(rows, points, count_failed_checks(folders, list(points)), confinement)
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def print_outcome(rows: list[dict[str, str]], points: dict[str, float], auto: list[str], confinement: str | None,
                  out: Path, report: Path) -> None:
    """The gradebook table, the summary and where everything is (grade and merge)."""
    from hwkit.report.gradebook import format_table

    print(format_table(rows, auto))
    print(f"\n{summary_text(rows, points, confinement)}")
    print(f"\ngradebook: {out / 'gradebook.csv'}   feedback: {out / 'feedback'}/   report: {report}")
    print(f"written answers: {out / 'written' / 'index.html'}   scores: {out / 'written_scores.csv'}")
