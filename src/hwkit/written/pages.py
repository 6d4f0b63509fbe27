"""The TA's pages: one HTML page per written question with every submission's answer, and an index.

Math is rendered here, into MathML (pandoc), so the pages need no script, CDN or network. Student
text is data: it goes through the sanitised AST of ``student.to_ast`` (no raw HTML, no attributes, no
live links) and every string we add ourselves is escaped.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hwkit.written.rubric import Rubric
from hwkit.written.student import NO_ANSWER, READER, Question, checked_image, is_blank, pandoc_api, to_ast

STYLE = """body{font-family:system-ui,sans-serif;margin:0 auto;max-width:78rem;padding:1rem 2rem;line-height:1.45}
.row{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:2rem;align-items:start}
.key{position:sticky;top:0;max-height:100vh;overflow:auto;background:#f6f8fa;padding:0 1rem;font-size:.9rem}
.answer{border-top:1px solid #ccc;padding:.3rem 0 1rem}.answer h3{font-size:1rem;margin:.6rem 0}
.none{color:#b00}img{max-width:100%;max-height:20rem}pre,code{white-space:pre-wrap;word-break:break-word}
math[display=block]{overflow-x:auto;max-width:100%}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .6rem;text-align:left}"""


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")


class _HtmlImages:
    """Images an answer embeds, re-encoded by us as data: URIs (never the student's own markup)."""

    def __init__(self, attachments: dict):
        self.attachments = attachments

    def __call__(self, url: str) -> dict:
        found = checked_image(url, self.attachments, None)
        if isinstance(found, dict):
            return found
        mime = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif"}[found[1]]
        src = f"data:{mime};base64,{base64.b64encode(found[0]).decode()}"
        return {"t": "RawInline", "c": ["html", f'<img alt="image in the answer" src="{src}">']}


def _key(q: Question) -> str:
    return hashlib.sha256(json.dumps([READER, q.text, q.attachments], sort_keys=True).encode()).hexdigest()


def _parsed(key: str, q: Question, cache: Path | None) -> dict:
    """The sanitised AST of an answer, kept in ``cache`` by a hash of the answer (re-runs parse only new ones).

    A cache entry is written to a temporary name and renamed, so a reader never sees half of one; an
    entry that does not read back (a run killed before the rename on a file system without it) is parsed again.
    """
    path = cache / f"{key}.json" if cache else None
    if path and path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
    try:
        doc = to_ast(q.text, _HtmlImages(q.attachments))
    except Exception:  # pandoc gave up on this answer: show it as typed
        doc = {"pandoc-api-version": pandoc_api(), "meta": {}, "blocks": [{"t": "CodeBlock", "c": [["", [], []], q.text]}]}
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.part")
        part.write_text(json.dumps(doc), encoding="utf-8")
        os.replace(part, path)
    return doc


def answers_html(answers: list[Question | None], cache: Path | None = None) -> list[str]:
    """Each answer as an HTML fragment with MathML: parsed one by one (in parallel), converted in one call.

    Identical answers are parsed once.
    """
    keys = [_key(q) if q is not None and not is_blank(q.text) else None for q in answers]
    unique = {key: q for key, q in zip(keys, answers) if key is not None}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # pandoc runs as a subprocess
        docs = dict(zip(unique, pool.map(lambda item: _parsed(*item, cache), unique.items())))
    api = pandoc_api()
    blocks = []
    for i, key in enumerate(keys):
        blocks.append({"t": "RawBlock", "c": ["html", f'<div class="cut" id="cut{i}"></div>']})
        if key is not None:
            blocks.extend(docs[key]["blocks"])
        else:
            blocks.append({"t": "RawBlock", "c": ["html", f'<p class="none">{NO_ANSWER}</p>']})
    out = _to_html(json.dumps({"pandoc-api-version": api, "meta": {}, "blocks": blocks}))
    parts = out.split('<div class="cut" id="cut')
    return [p.split("></div>", 1)[1] if "></div>" in p else "" for p in parts[1:]]


def _to_html(ast_json: str) -> str:
    import pypandoc

    return pypandoc.convert_text(ast_json, "html5", format="json", extra_args=["--quiet", "--mathml"])


def markdown_html(markdown: str) -> str:
    """Trusted Markdown (the answer key) as HTML with MathML."""
    import pypandoc

    return pypandoc.convert_text(markdown, "html5", format="markdown+lists_without_preceding_blankline",
                                 extra_args=["--quiet", "--mathml"])


def _inline(markdown: str) -> str:
    """A line of trusted Markdown (a rubric title) as inline HTML with MathML."""
    out = markdown_html(markdown).strip()
    return out[3:-4] if out.startswith("<p>") and out.endswith("</p>") else out


def question_page(qid: str, rubric: Rubric, prompt: str, names: list[str], answers: list[Question | None],
                  pdf_links: dict[str, str], cache: Path | None = None, written: list[str] | None = None) -> str:
    """One written question: the prompt, then every submission's answer beside the model answer and rubric.

    ``written``: every written question, in order, for the links between the pages."""
    rendered = answers_html(answers, cache)
    items = []
    for name, fragment in zip(names, rendered):
        link = f' <a href="{html.escape(pdf_links[name])}">PDF</a>' if name in pdf_links else ""
        items.append(f'<div class="answer"><h3>{html.escape(name)}{link}</h3>\n{fragment}</div>')
    nav = " · ".join(f'<a href="{q}.html">{q}</a>' if q != qid else f"<b>{q}</b>" for q in written or [qid])
    body = (f'<p><a href="index.html">all questions</a> · {nav}</p>'
            f"<h1>{html.escape(qid)} ({rubric.points:g} point{'s' if rubric.points != 1 else ''})"
            f"{': ' + _inline(rubric.title) if rubric.title else ''}</h1>"
            f"{prompt}<div class=\"row\"><div>{''.join(items)}</div>"
            f'<aside class="key"><h2>Model answer and rubric</h2>{markdown_html(rubric.markdown)}</aside></div>')
    return _page(f"{qid}: written answers", body)


def index_page(rubrics: dict[str, Rubric], names: list[str], answered: dict[str, set[str]],
               pdf_links: dict[str, str], scores_csv: str) -> str:
    """The list of written questions, how many submissions answered each, and the PDFs."""
    rows = "".join(f'<tr><td><a href="{q}.html">{q}</a></td><td>{_inline(r.title)}</td><td>{r.points:g}</td>'
                   f"<td>{len(answered[q])} / {len(names)}</td></tr>" for q, r in rubrics.items())
    pdfs = "".join(f'<li><a href="{html.escape(link)}">{html.escape(name)}</a></li>' for name, link in pdf_links.items())
    body = (f"<h1>Written answers</h1><p>{len(names)} submissions. Enter points in "
            f"<code>{html.escape(scores_csv)}</code> (steps of 0.25); the next <code>make grade</code> adds them "
            f"to the gradebook.</p><table><tr><th>question</th><th>about</th><th>points</th><th>answered</th></tr>"
            f"{rows}</table><h2>PDFs made from the notebooks</h2><ul>{pdfs or '<li>none</li>'}</ul>")
    return _page("Written answers", body)
