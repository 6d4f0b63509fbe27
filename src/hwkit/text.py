"""Student text as data: one printable line, encodable anywhere, before it reaches a file or a terminal."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.")  # CSI, OSC, two-byte


def one_line(text: object, limit: int = 2000) -> str:
    """``text`` without terminal escapes, control or format characters (bidi overrides) and lone surrogates,
    newlines and tabs turned into spaces, at most ``limit`` characters."""
    s = _ESCAPES.sub("", str(text))
    s = s.encode("utf-8", "surrogatepass").decode("utf-8", "replace") if _has_surrogates(s) else s
    s = "".join(" " if c in "\t\n\r\v\f\x85\u2028\u2029" else c for c in s
                if c in "\t\n\r\v\f\x85\u2028\u2029" or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    s = re.sub(r" {2,}", " ", s).strip()
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _has_surrogates(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def display_name(name: str) -> str:
    """A file name as printable text: undecodable bytes (kept by ``surrogateescape``) become U+FFFD."""
    raw = name.encode("utf-8", "surrogateescape") if _has_surrogates(name) else name.encode("utf-8")
    return one_line(raw.decode("utf-8", "replace"), 300)


def short_hash(name: str) -> str:
    """Eight hex characters identifying ``name`` exactly (undecodable bytes included)."""
    return hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
