"""The written answers' PDF: one page per question, typeset math, unanswered questions flagged, hostile input survives."""

from __future__ import annotations

import base64
import json
import re
import struct
import time
import zlib
from pathlib import Path

import pytest
from pypdf import PdfReader

from hwkit.written import student

pytestmark = pytest.mark.slow  # each test compiles PDFs with pandoc and Typst (3 to 12 s)

KEY_PHRASES = {"q1a": "with the conventions", "q1b": "strict concavity", "q2a": "dropping it can only decrease",
               "q3a": "KL of independent components adds up", "q4a": "A variance must be positive",
               "q5a": "backpropagation cannot pass through the sampling step"}


def page_texts(pdf: Path) -> list[str]:
    """The text of each page, whitespace collapsed."""
    return [re.sub(r"\s+", " ", page.extract_text() or "") for page in PdfReader(pdf).pages]


def page_question(text: str) -> str | None:
    """The question id a page is headed with (the running header names it)."""
    m = re.search(r"VAE homework: written answers (q\d[a-z])", text)
    return m.group(1) if m else None


@pytest.fixture(scope="module")
def full_credit(dist: Path) -> dict:
    return json.loads((dist / "known" / "full-credit.ipynb").read_text(encoding="utf-8"))


def set_answer(nb: dict, qid: str, markdown: str, attachments: dict | None = None) -> dict:
    """A copy of ``nb`` whose written answer to ``qid`` is ``markdown`` (one answer cell, the others emptied)."""
    nb = json.loads(json.dumps(nb))
    current, done = None, False
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if m := student.PROMPT.search(src):
            current = m.group(1)
            continue
        if current == qid and student._is_answer_cell(cell):
            cell["source"] = "" if done else markdown
            if attachments and not done:
                cell["attachments"] = attachments
            done = True
    assert done, qid
    return nb


def set_code(nb: dict, qid: str, code: str) -> dict:
    nb = json.loads(json.dumps(nb))
    current = None
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if m := student.PROMPT.search(src):
            current = m.group(1)
        elif current == qid and cell["cell_type"] == "code" and student._is_answer_cell(cell):
            cell["source"] = code
            return nb
    raise AssertionError(qid)


def export(nb: dict, folder: Path, capsys) -> tuple[Path, str, float]:
    """Run the export cell's PDF step on a saved notebook; the PDF, what it printed, the seconds it took."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vae_hw.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    start = time.monotonic()
    student.export_written(str(folder / "vae_hw.ipynb"), str(folder / student.PDF_NAME))
    return folder / student.PDF_NAME, capsys.readouterr().out, time.monotonic() - start


def test_reference_answers_one_page_each_math_typeset(full_credit, tmp_path, capsys, written):
    """Does page k hold written question k with its model answer's words, its math typeset (no $ or \\frac)?"""
    pdf, printed, _ = export(full_credit, tmp_path, capsys)
    texts = page_texts(pdf)
    assert len(texts) == len(written)
    for qid, text in zip(written, texts):
        assert page_question(text) == qid
        assert KEY_PHRASES[qid] in text, (qid, text[:300])
        assert "$" not in text and "\\frac" not in text and "\\mathbb" not in text, (qid, text)
        assert student.NO_ANSWER not in text
    assert "Warning" not in printed and "Wrote" in printed


def test_template_has_the_same_pages_with_blank_answers(dist, full_credit, tmp_path, capsys, written):
    """Does the Gradescope template have as many pages as a student's PDF, the same question on each?"""
    pdf, _, _ = export(full_credit, tmp_path, capsys)
    template = page_texts(dist / "vae_hw-written-template.pdf")
    assert [page_question(t) for t in template] == [page_question(t) for t in page_texts(pdf)] == written
    for qid, text in zip(written, template):
        assert KEY_PHRASES[qid] not in text and student.NO_ANSWER not in text


def test_unanswered_questions_are_listed_and_marked(full_credit, tmp_path, capsys, written):
    """Two written answers left at the placeholder and a code answer left at `...`: named in the warning, and
    "(no answer)" on exactly those two pages?"""
    nb = set_answer(full_credit, "q1b", student.PLACEHOLDER)
    nb = set_answer(nb, "q4a", "  \n")
    nb = set_code(nb, "q3b", "def kl_normal_standard(mu, logvar):\n    ...\n")
    assert student.unanswered(nb) == ["q1b", "q4a", "q3b"]
    pdf, printed, _ = export(nb, tmp_path, capsys)
    warning = next(line for line in printed.splitlines() if line.startswith("Warning"))
    assert all(q in warning for q in ("q1b", "q4a", "q3b")) and "q1a" not in warning
    texts = page_texts(pdf)
    assert [student.NO_ANSWER in t for t in texts] == [q in ("q1b", "q4a") for q in written]
    assert pdf.is_file()


def test_blank_student_notebook_lists_every_question(dist, written, points):
    """Does the notebook as handed out list all 6 written and all 9 code answers as missing?"""
    nb = json.loads((dist / "student" / "vae_hw.ipynb").read_text(encoding="utf-8"))
    assert sorted(student.unanswered(nb)) == sorted([*written, *points])


def noise_png(nbytes: int) -> bytes:
    """A valid PNG of random pixels, about ``nbytes`` long (random data does not compress)."""
    import os

    side = int((nbytes / 3) ** 0.5)
    raw = b"".join(b"\x00" + os.urandom(side * 3) for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")


HOSTILE = {
    "raw-html": ('Before <script>alert("pwned")</script> <b>bold</b> <img src=x onerror=alert(1)> after',
                 ['<script>alert("pwned")</script>', "after"]),
    "bad-latex": (r"Fine math $a^2$ then bad $\frac{1}{$ then more text.", [r"\frac{1}{", "then more text"]),
    "rtl-emoji": ("Answer: שלום עולם مرحبا بالعالم 😀🎉 and $x^2$ done.", ["Answer:", "done."]),
    "long-text": ("Long answer. " * 7700, ["Long answer."]),
    "raw-typst": ('`#read("/etc/passwd")`{=typst} and ```{=typst}\n#panic("no")\n```', ["#read", "#panic"]),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_answer_still_makes_the_pdf(full_credit, tmp_path, capsys, case, written):
    """Does a hostile answer to q3a give a PDF in seconds, the bad part shown verbatim, the other pages intact?"""
    markdown, shown = HOSTILE[case]
    pdf, printed, seconds = export(set_answer(full_credit, "q3a", markdown), tmp_path, capsys)
    assert "Could not" not in printed and seconds < 30, (printed, seconds)
    texts = page_texts(pdf)
    assert [page_question(t) for t in texts[:6]] == written
    for qid, text in zip(written, texts):
        if qid != "q3a":
            assert KEY_PHRASES[qid] in text, qid
    q3a = " ".join(t for t in texts if page_question(t) == "q3a")
    for part in shown:
        assert part in q3a, (case, part, q3a[:500])
    if case == "long-text":  # 100 KB: continues after page 6, and page 4 says where
        assert len(texts) > 6 and all(page_question(t) == "q3a" for t in texts[6:])
        assert f"continued on pages 7-{len(texts)}" in texts[3]
        assert "(continued)" in texts[6]


def test_five_megabyte_image_is_embedded(full_credit, tmp_path, capsys):
    """Does a 5 MB pasted image end up on its question's page, in seconds, and a missing, fake or remote one
    show as a note?"""
    png = noise_png(int(5.1 * 2**20))
    assert len(png) > 5 * 2**20
    nb = set_answer(full_credit, "q4a", "Here: ![plot](attachment:plot.png), a missing ![x](attachment:nope.png), "
                    "a fake ![y](attachment:fake.png) and a remote ![z](https://example.org/z.png)",
                    {"plot.png": {"image/png": base64.b64encode(png).decode()},
                     "fake.png": {"image/png": base64.b64encode(b"<svg onload=alert(1)>").decode()}})
    pdf, printed, seconds = export(nb, tmp_path, capsys)
    assert seconds < 30 and "Wrote" in printed
    reader = PdfReader(pdf)
    assert [len(p.images) for p in reader.pages] == [0, 0, 0, 0, 1, 0]
    text = page_texts(pdf)[4]
    assert "[image not included: attachment:nope.png]" in text and "[image not included: not a PNG file]" in text
    assert "[image not included: https://example.org/z.png]" in text


def test_unreadable_notebook_never_raises(tmp_path, capsys):
    """Does the export step print a sentence, not a traceback, when the notebook cannot be read?"""
    (tmp_path / "vae_hw.ipynb").write_text("{not json", encoding="utf-8")
    assert student.export_written(str(tmp_path / "vae_hw.ipynb"), str(tmp_path / "x.pdf")) == []
    assert "Could not read" in capsys.readouterr().out


def test_solutions_handout_renders_the_model_answers(dist):
    """Do dist/solutions/ hold the reference as HTML (MathML, no script) and PDF, with the written model answers?"""
    html = (dist / "solutions" / "vae_hw-solutions.html").read_text(encoding="utf-8")
    pdf = " ".join(page_texts(dist / "solutions" / "vae_hw-solutions.pdf"))
    assert "<math" in html and "<script" not in html and "BEGIN SOLUTION" not in html
    for qid, phrase in KEY_PHRASES.items():
        assert phrase in re.sub(r"\s+", " ", html) and phrase in pdf, qid
    assert "$" not in pdf and "\\frac" not in pdf and "def kl_divergence" in pdf


def test_formula_typst_refuses_is_shown_as_tex_alone(full_credit, tmp_path, capsys, monkeypatch):
    """When Typst refuses one formula (here pandoc's pre-0.14 name for \\odot, left unfixed), is only that formula
    shown as its TeX, the answer's other math still typeset?"""
    monkeypatch.setattr(student, "fix_math", lambda markup: markup)
    nb = set_answer(full_credit, "q5a", r"Noise $z = \mu + \sigma \odot \varepsilon$ and the fraction $\frac{a}{b}$.")
    pdf, printed, _ = export(nb, tmp_path, capsys)
    q5a = page_texts(pdf)[5]
    assert r"$z = \mu + \sigma \odot \varepsilon$" in q5a and "\\frac" not in q5a and "Noise" in q5a, q5a


def test_answers_in_cells_the_student_added_or_without_tags(full_credit, written):
    """Is a written answer typed into a new cell below the prompt found, and are the answers the same when an
    editor dropped every cell tag?"""
    reference = student.read_questions(full_credit)
    nb = set_answer(full_credit, "q2a", student.PLACEHOLDER)
    cells = nb["cells"]
    prompt = next(i for i, c in enumerate(cells) if "**q2a (written" in "".join(c["source"]))
    cells.insert(prompt + 2, {"cell_type": "markdown", "metadata": {}, "source": "My own cell: $a \\ge b$."})
    assert student.read_questions(nb)["q2a"].text == "My own cell: $a \\ge b$."
    assert "q2a" not in student.unanswered(nb)
    untagged = json.loads(json.dumps(full_credit))
    for cell in untagged["cells"]:
        cell["metadata"].pop("tags", None)
    found = student.read_questions(untagged)
    assert {q: found[q].text for q in written} == {q: reference[q].text for q in written}
    assert student.unanswered(untagged) == []
    assert student.unanswered(set_code(full_credit, "q5b", "def reparameterize(mu, logvar):\n    ...\n")) == ["q5b"]
