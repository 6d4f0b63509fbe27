"""Does the toolkit's source name nothing of the VAE homework, so that any homework can be built and graded with it?

The names looked for: the VAE homework's own words (``vae``, ``elbo``, ``kl_``, its data files), the functions,
classes and answer variables its master notebook defines, and its question ids that the second homework
(``tests/homeworks/softmax_hw``) does not also use (ids the two share are fine as examples of the format).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat

from hwkit.author.known import top_level_nodes
from hwkit.author.questions import read_master

ROOT = Path(__file__).resolve().parents[1]
VAE_MASTER = ROOT / "assignment" / "vae_hw.ipynb"
SECOND_MASTER = ROOT / "tests" / "homeworks" / "softmax_hw" / "assignment" / "softmax_hw.ipynb"
WORDS = ("vae", "elbo", "kl_", "digits", "heldout", "reparameter")


def _defined(master: Path) -> set[str]:
    """The functions and classes a master notebook defines, and its ``*_answer`` variables."""
    names = set()
    for _, node in top_level_nodes(nbformat.read(master, as_version=4)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("test_"):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name) and t.id.endswith("_answer"))
    return names


def vae_names() -> dict[str, re.Pattern]:
    """What gives the VAE homework away, each as a pattern: a word starts where no letter or digit precedes it
    (``kl_`` but not ``MKL_NUM_THREADS``); a question id stands alone (``q6a``, ``test_q6a_learns``)."""
    ids = {q.qid for q in read_master(VAE_MASTER)} - {q.qid for q in read_master(SECOND_MASTER)}
    words = {w.lower() for w in set(WORDS) | (_defined(VAE_MASTER) - _defined(SECOND_MASTER))}  # matched in any case
    found = {w: re.compile(rf"(?<![a-z0-9]){re.escape(w)}", re.I) for w in words}
    found.update({q: re.compile(rf"(?<![a-z0-9]){q}(?![a-z0-9])", re.I) for q in ids})
    return found


def vae_names_in(src: Path) -> list[str]:
    """``file:line: name`` for every VAE name in the source files under ``src``."""
    patterns = vae_names()
    hits = []
    for path in sorted(src.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or ".egg-info" in str(path):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            hits += [f"{path.relative_to(src)}:{n}: {name}" for name, p in sorted(patterns.items()) if p.search(line)]
    return hits


def test_the_names_are_those_of_the_vae_homework():
    """Are the patterns the VAE homework's (its functions, its own ids), and not the second homework's?"""
    names = vae_names()
    assert {"kl_divergence", "train_vae", "q2b_answer", "q6a", "q1c", "vae", "kl_"} <= set(names)
    assert not {"softmax", "cross_entropy", "q1a", "q1b", "q2a"} & set(names)
    assert names["kl_"].search("x = kl_normal_standard(mu)") and not names["kl_"].search('"MKL_NUM_THREADS"')
    assert names["q6a"].search("test_q6a_learns") and not names["q6a"].search("q6ab")


def test_toolkit_source_names_no_vae_homework_thing():
    """Does any file under src/ name the VAE homework, its data, functions or question ids?"""
    hits = vae_names_in(ROOT / "src")
    assert hits == [], "the toolkit names the VAE homework:\n" + "\n".join(hits)
