"""The written half of a homework's export: find the answers, warn about missing ones, make the PDF.

Ships beside the student notebook as ``<name>_written.py``; needs only the standard library,
``pypandoc-binary`` (Markdown and TeX math to Typst) and ``typst`` and ``pypdf`` (the PDF). No LaTeX, no
browser. Page k holds written question k; an answer longer than a page continues after the last
question's page, so the first pages are always the same questions (see the README).
"""

from __future__ import annotations

import ast
import base64
import functools
import json
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

# The written questions, in page order, the assignment's name and the homework's title. The build writes them
# here, from the master notebook, in the copy it ships (<name>_written.py); the toolkit's own copy leaves them
# empty and passes the list it grades with and the title.
WRITTEN: tuple[str, ...] = ()
NAME = ""
TITLE = ""
PLACEHOLDER = "_Type your answer here, replacing this text._"
NO_ANSWER = "(no answer)"
PDF_NAME = f"{NAME or 'homework'}-written.pdf"
ANSWER_TAGS = {"otter_answer_cell", "otter_assign_solution_cell"}  # the student's, the reference's
PROMPT = re.compile(r"\*\*(q\d+[a-z]) \(([a-z ]+)[,)]")
MARKER = re.compile(r"<!--\s*(BEGIN|END) QUESTION\s*-->")
# Student Markdown is data: no raw HTML, TeX or Typst passes through pandoc; it shows as text.
READER = "markdown+lists_without_preceding_blankline-raw_html-raw_attribute-raw_tex-smart"
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif"}
MAX_IMAGE_BYTES = 8 * 2**20
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpg": b"\xff\xd8\xff", "gif": b"GIF8"}


@dataclass
class Question:
    """One question of a notebook: its prompt and its answer cells."""

    qid: str
    kind: str  # "written" or "code"
    prompt: str = ""
    answers: list[str] = field(default_factory=list)
    attachments: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> {mime: base64}

    @property
    def text(self) -> str:
        return "\n\n".join(a for a in self.answers if a.replace(PLACEHOLDER, "").strip())


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def read_questions(nb: dict) -> dict[str, Question]:
    """Every question of the notebook by id, with the answer cells that follow its prompt.

    A written answer is every Markdown cell between its prompt and the end of the question (cells a
    student added count too); a code answer is every code cell tagged as one (or, where an editor lost
    the tags, every code cell up to the next prompt but the checks).
    """
    cells = [c for c in nb.get("cells", []) if isinstance(c, dict)]
    tagged = any(_is_answer_cell(c) for c in cells if c.get("cell_type") == "code")
    questions: dict[str, Question] = {}
    current: Question | None = None
    for cell in cells:
        src, kind = _source(cell), cell.get("cell_type")
        match = PROMPT.search(src) if kind == "markdown" else None
        if match:
            written = match.group(2) == "written"
            current = questions.setdefault(match.group(1), Question(match.group(1), "written" if written else "code"))
            current.prompt = MARKER.sub("", src[match.start():]).strip()
        elif current is not None and kind == "markdown" and MARKER.search(src):
            current = None  # the end of a written question
        elif current is not None and kind == ("markdown" if current.kind == "written" else "code"):
            if kind == "code" and not (_is_answer_cell(cell) if tagged else not src.lstrip().startswith("grader.")):
                continue
            current.answers.append(src)
            for name, data in (cell.get("attachments") or {}).items():
                if isinstance(data, dict):
                    current.attachments[str(name)] = data
    return questions


def _is_answer_cell(cell: dict) -> bool:
    return bool(ANSWER_TAGS & set((cell.get("metadata") or {}).get("tags", []) or []))


def _has_ellipsis(code: str) -> bool:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return any(line.strip() == "..." or line.rstrip().endswith("= ...") for line in code.splitlines())
    return any(isinstance(n, ast.Constant) and n.value is Ellipsis for n in ast.walk(tree))


def written_ids(questions: dict[str, Question], written: Sequence[str] | None = None) -> tuple[str, ...]:
    """The written questions in page order: ``written`` if given, else ``WRITTEN``, else (no list at all)
    the written prompts of the notebook, in its order."""
    if written is not None:
        return tuple(written)
    return WRITTEN or tuple(q for q, question in questions.items() if question.kind == "written")


def unanswered(nb: dict, written: Sequence[str] | None = None) -> list[str]:
    """Ids of written answers still empty or at the placeholder and of code answers still holding ``...``."""
    questions = read_questions(nb)
    missing = [q for q in written_ids(questions, written) if q not in questions or is_blank(questions[q].text)]
    missing += [q for q, question in questions.items()
                if question.kind == "code" and any(_has_ellipsis(a) for a in question.answers)]
    return missing


def is_blank(text: str) -> bool:
    """Is an answer empty once the placeholder is taken out?"""
    return not text.replace(PLACEHOLDER, "").strip()


def pandoc_convert(text: str, fmt_from: str, fmt_to: str) -> str:
    """``text`` converted by the pandoc inside the pypandoc-binary wheel, warnings silenced."""
    import pypandoc

    return pypandoc.convert_text(text, fmt_to, format=fmt_from, extra_args=["--quiet"])


@functools.cache
def pandoc_api() -> list[int]:
    """The AST version of the pandoc at hand (a document built by hand must carry it)."""
    return json.loads(pandoc_convert("", "markdown", "json"))["pandoc-api-version"]


def _walk(node, fix):
    """Apply ``fix`` to every pandoc AST element (dicts with "t"), children first; returns the new tree."""
    if isinstance(node, list):
        return [_walk(n, fix) for n in node]
    if isinstance(node, dict):
        node = {k: _walk(v, fix) for k, v in node.items()}
        return fix(node) if "t" in node else node
    return node


def _code(text: str) -> dict:
    return {"t": "Code", "c": [["", [], []], text]}


def image_bytes(url: str, attachments: dict, folder: Path | None) -> tuple[bytes, str] | None:
    """The bytes and extension of an image an answer embeds (attachment, data: URI, file beside the notebook)."""
    if url.startswith("attachment:"):
        for mime, b64 in attachments.get(url[len("attachment:"):], {}).items():
            if mime in IMAGE_TYPES:
                return base64.b64decode(b64 if isinstance(b64, str) else "".join(b64)), IMAGE_TYPES[mime]
    elif m := re.match(r"data:(image/[a-z]+);base64,(.*)$", url, flags=re.S):
        if m.group(1) in IMAGE_TYPES:
            return base64.b64decode(m.group(2)), IMAGE_TYPES[m.group(1)]
    elif folder is not None and not re.match(r"^[a-z]+:", url, flags=re.I):
        path = (folder / url).resolve()  # only files inside the notebook's own folder
        ext = path.suffix.lower().lstrip(".").replace("jpeg", "jpg")
        if path.is_relative_to(folder.resolve()) and path.is_file() and ext in IMAGE_TYPES.values():
            return path.read_bytes(), ext
    return None


def checked_image(url: str, attachments: dict, folder: Path | None) -> tuple[bytes, str] | dict:
    """An image's bytes and extension, or the Code element that says why it is not shown."""
    try:
        found = image_bytes(url, attachments, folder)
    except (ValueError, OSError):
        found = None
    if found is None:
        return _code(f"[image not included: {url if len(url) < 80 else url[:60] + '...'}]")
    if len(found[0]) > MAX_IMAGE_BYTES:
        return _code(f"[image not included: {len(found[0]) / 2**20:.1f} MB, over {MAX_IMAGE_BYTES // 2**20} MB]")
    if not found[0].startswith(MAGIC[found[1]]):
        return _code(f"[image not included: not a {found[1].upper()} file]")
    return found


class _Images:
    """Writes the images an answer embeds into the Typst folder; Typst elements that show them."""

    def __init__(self, workdir: Path, attachments: dict, folder: Path | None, use_images: bool):
        self.workdir, self.attachments, self.folder, self.use = workdir, attachments, folder, use_images
        self.count = 0

    def __call__(self, url: str) -> dict:
        found = checked_image(url, self.attachments, self.folder) if self.use else _code(f"[image: {url[:60]}]")
        if isinstance(found, dict):
            return found
        self.count += 1
        name = f"img{self.count}.{found[1]}"
        (self.workdir / name).write_bytes(found[0])
        return {"t": "RawInline", "c": ["typst", f'#box(image("{name}", width: 100%, height: 7cm, fit: "contain"))']}


def to_ast(markdown: str, images: _Images | None, *, math=True) -> dict:
    """Student Markdown as a sanitised pandoc AST: no raw markup, no attributes, links as text."""
    doc = json.loads(pandoc_convert(markdown, READER, "json"))

    def fix(node: dict):
        t = node["t"]
        if t in ("RawInline", "RawBlock"):
            return _code(node["c"][1]) if t == "RawInline" else {"t": "CodeBlock", "c": [["", [], []], node["c"][1]]}
        if t == "Image":
            return images(node["c"][2][0]) if images else _code("[image]")
        if t == "Link":  # keep the words, show the target; never a live link
            return {"t": "Span", "c": [["", [], []], node["c"][1] + [{"t": "Space"}, _code(f"<{node['c'][2][0]}>")]]}
        if t == "Math" and (not math or (callable(math) and not math(node))):
            return _code(("$$%s$$" if node["c"][0]["t"] == "DisplayMath" else "$%s$") % node["c"][1])
        for i, part in enumerate(node.get("c", [])[:2] if isinstance(node.get("c"), list) else []):
            if _is_attr(part):  # ids, classes and key=value attributes go
                node["c"][i] = ["", [], []]
        return node

    return _walk(doc, fix)


def _is_attr(x) -> bool:
    return isinstance(x, list) and len(x) == 3 and isinstance(x[0], str) and isinstance(x[1], list)


def _typst_string(text: str) -> str:
    # A JSON string literal is a valid Typst string literal, once its \uXXXX escapes (control characters and,
    # by default, all non-ASCII) are avoided: Typst spells them \u{XXXX}.
    return json.dumps("".join(c for c in text if c.isprintable() or c in "\n\t"), ensure_ascii=False)


def notebook_title(nb: dict) -> str:
    """The notebook's ``metadata.title`` (set in the master notebook), as one short line; empty if none."""
    metadata = nb.get("metadata") if isinstance(nb, dict) else None
    title = metadata.get("title") if isinstance(metadata, dict) else None
    return " ".join(title.split())[:80] if isinstance(title, str) else ""


PREAMBLE = """#set document(title: running-title)
#let horizontalrule = line(start: (25%,0%), end: (75%,0%))
#set page(paper: "us-letter", margin: (x: 2cm, top: 2.2cm, bottom: 2cm),
  header: context [#set text(9pt, fill: gray); #running-title #h(1fr) #QID
    #if counter(page).get().first() > 1 [(continued)]],
  footer: context [#set text(9pt, fill: gray); #QID
    #if counter(page).final().first() > 1 [part #counter(page).display() of #counter(page).final().first()]
    #h(1fr) #if counter(page).get().first() == 1 [#CONT]])
#set text(size: 11pt)
#set par(justify: false)
#set smartquote(enabled: false)
"""


def question_source(q: Question | None, qid: str, workdir: Path, *, template: bool, cont: str,
                    use_images: bool = True, math: bool = True, folder: Path | None = None, title: str = "") -> str:
    """The Typst source of one question's pages: heading, prompt, answer (or the blank of the template)."""
    running = _typst_string(f"{title or NAME or 'Homework'}: written answers")
    head = f"#let running-title = {running}\n" + PREAMBLE.replace("#QID", "#" + _typst_string(qid)).replace(
        "#CONT", "#" + _typst_string(cont))
    prompt = _pandoc_typst(to_ast(q.prompt, None, math=math)) if q and q.prompt else "(prompt not found in the notebook)"
    body = f"= {qid}\n\n{prompt}\n\n#line(length: 100%, stroke: 0.5pt + gray)\n*Answer*\n\n"
    if template:
        return head + body
    if q is None or is_blank(q.text):
        return head + body + f"#text(fill: red)[{_typst_string(NO_ANSWER)}]\n"
    images = _Images(workdir, q.attachments, folder, use_images)
    return head + body + _pandoc_typst(to_ast(q.text.replace(PLACEHOLDER, ""), images, math=math))


# Symbols pandoc's Typst writer names by their names before Typst 0.14.
RENAMED = {"dot.circle": "dot.o", "times.circle": "times.o", "plus.circle": "plus.o", "minus.circle": "minus.o",
           "sect": "inter", "sect.big": "inter.big", "union.big": "union.big"}


def fix_math(markup: str) -> str:
    """Typst markup with the renamed math symbols fixed (inside math only)."""
    words = re.compile(r"(?<![\w.])(%s)(?![\w.])" % "|".join(re.escape(k) for k in RENAMED))
    fix = lambda m: words.sub(lambda w: RENAMED[w.group(1)], m.group(0))
    return re.sub(r"(?<!\\)\$(?:\\.|[^$\\])*\$", fix, markup)


def _pandoc_typst(ast_doc: dict) -> str:
    return fix_math(pandoc_convert(json.dumps(ast_doc), "json", "typst"))


def _math_compiles(node: dict) -> bool:
    """Does Typst accept this one formula? (Used only once a whole answer has failed.)"""
    with tempfile.TemporaryDirectory() as tmp:
        blocks = [{"t": "Para", "c": [node]}]
        try:
            _compile(_pandoc_typst({"pandoc-api-version": pandoc_api(), "meta": {}, "blocks": blocks}), Path(tmp))
            return True
        except Exception:
            return False


def _compile(source: str, workdir: Path) -> bytes:
    import typst

    (workdir / "main.typ").write_text(source, encoding="utf-8")
    return typst.compile(str(workdir / "main.typ"), root=str(workdir), format="pdf")


def _render_question(q: Question | None, qid: str, workdir: Path, template: bool, cont: str, folder,
                     title: str = "") -> bytes:
    """One question's PDF; what Typst refuses is shown verbatim instead (images, then math, then all)."""
    for use_images, math in ((True, True), (True, _math_compiles), (False, _math_compiles), (False, False)):
        try:
            return _compile(question_source(q, qid, workdir, template=template, cont=cont, use_images=use_images,
                                            math=math, folder=folder, title=title), workdir)
        except Exception:  # Typst's compile errors have no public class
            continue
    verbatim = Question(qid, "written", "", ["```\n" + (q.text if q else "").replace("`", "'") + "\n```"])
    return _compile(question_source(verbatim, qid, workdir, template=False, cont=cont, use_images=False,
                                    math=False, title=title), workdir)


def written_pdf(nb: dict, out: Path, *, template: bool = False, folder: Path | None = None,
                written: Sequence[str] | None = None, title: str = "") -> list[int]:
    """Write the PDF of the written answers to ``out``; return the number of pages of each question.

    Page k starts written question k (``written_ids``); extra pages of a long answer follow the last
    question's first page, in question order.
    """
    from io import BytesIO

    from pypdf import PdfReader, PdfWriter

    questions = read_questions(nb)
    order = written_ids(questions, written)
    title = title or TITLE or notebook_title(nb)
    with tempfile.TemporaryDirectory(prefix="written-") as tmp:
        def render(qid: str, cont: str) -> PdfReader:
            workdir = Path(tmp) / qid
            workdir.mkdir(exist_ok=True)
            return PdfReader(BytesIO(_render_question(questions.get(qid), qid, workdir, template, cont, folder, title)))

        parts = {qid: render(qid, "") for qid in order}
        next_page = len(order) + 1
        for qid in order:  # say where a long answer goes on; the page count does not change
            extra = len(parts[qid].pages) - 1
            if extra:
                last = next_page + extra - 1
                pages = f"page {next_page}" if extra == 1 else f"pages {next_page}-{last}"
                parts[qid] = render(qid, f"continued on {pages}")
                next_page = last + 1
        writer = PdfWriter()
        for qid in order:
            writer.add_page(parts[qid].pages[0])
        for qid in order:
            for page in parts[qid].pages[1:]:
                writer.add_page(page)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as f:
            writer.write(f)
    return [len(parts[qid].pages) for qid in order]


def export_written(notebook: str = f"{NAME or 'homework'}.ipynb", out: str = PDF_NAME) -> list[str]:
    """The export cell's first step: warn about unanswered questions, then write the written answers' PDF.

    Never raises: a problem is printed, and the zip is still made by the next line of the cell.
    """
    path = Path(notebook)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"Could not read {notebook} ({e}); save the notebook and run this cell again.")
        return []
    missing = unanswered(nb)
    if missing:
        print(f"Warning: no answer yet to {', '.join(missing)} (is the notebook saved?). "
              f"You can still submit; those pages of the PDF say {NO_ANSWER}.")
    try:
        pages = written_pdf(nb, Path(out), folder=path.resolve().parent)
    except ImportError as e:
        print(f"Could not make {out}: {e}. Run `pip install -r requirements.txt` and this cell again.")
        return missing
    except Exception as e:  # the zip must still be made
        print(f"Could not make {out}: {type(e).__name__}: {e}")
        return missing
    print(f"Wrote {out} ({sum(pages)} pages): upload it to the Gradescope PDF assignment.")
    return missing


if __name__ == "__main__":  # python <name>_written.py [notebook] [out.pdf]
    export_written(*sys.argv[1:3])
