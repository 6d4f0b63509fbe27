"""Student text and student folders are data: one printable line each; any depth is removable."""

from __future__ import annotations

import os
import sys

from hwkit.grade.cleanup import remove_tree
from hwkit.grade.batch import safe_name
from hwkit.text import display_name, one_line


def test_one_line_keeps_no_escape_newline_or_surrogate():
    """Do terminal escapes, newlines, bidi overrides and lone surrogates all vanish, the words kept?"""
    text = one_line("bad\x1b[2J\x1b]0;title\x07\nTotal: 18 / 18\r\n\u202eevil\ud800 end")
    assert text.encode("utf-8") and "\n" not in text and "\x1b" not in text and "\u202e" not in text
    assert text.startswith("bad Total: 18 / 18 evil") and text.endswith("end")
    assert len(one_line("x" * 5000, 100)) == 100


def test_names_that_read_alike_get_their_own_folders():
    """Do `alice smith` and `alice_smith` (and an undecodable name) get distinct, printable folder names?"""
    undecodable = os.fsdecode(b"caf\xe9.ipynb")
    folders = {safe_name("alice smith.ipynb"), safe_name("alice_smith.ipynb"), safe_name(undecodable)}
    assert len(folders) == 3 and all(f.isprintable() for f in folders)
    assert display_name(undecodable) == "caf\ufffd.ipynb"


def test_remove_tree_without_recursion(tmp_path):
    """Is a folder 3,000 levels deep, with an unreadable level and a link out, removed with a small stack?"""
    outside = tmp_path / "outside"
    outside.write_text("keep")
    root = tmp_path / "deep"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    for i in range(3000):
        os.mkdir("d", dir_fd=fd)
        new = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = new
        if i == 1500:
            os.symlink(outside, "link", dir_fd=fd)
    os.close(fd)
    os.chmod(root / "d", 0)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(60)
    try:
        remove_tree(root)
    finally:
        sys.setrecursionlimit(limit)
    assert not root.exists() and outside.read_text() == "keep"
