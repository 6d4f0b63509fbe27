"""Find submissions and turn each into a notebook file to grade, or a clear status why not."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import nbformat

from .errors import UsageError

SUFFIXES = (".ipynb", ".zip")


class Ungradable(Exception):
    """A submission that cannot be graded; the message is its gradebook status."""


def find_submissions(paths: list[Path]) -> list[tuple[str, Path]]:
    """Return ``(name, path)`` for every ``.ipynb``/``.zip`` under ``paths``, sorted by name.

    ``name`` is the path relative to the folder it was found in (or the file name).
    """
    found: dict[str, Path] = {}
    for root in paths:
        if not root.exists():
            raise UsageError(f"no such file or folder: {root}")
        if root.is_file():
            if root.suffix.lower() not in SUFFIXES:
                raise UsageError(f"not a notebook or zip submission: {root}")
            found[root.name] = root
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix.lower() in SUFFIXES and ".ipynb_checkpoints" not in path.parts:
                found[str(path.relative_to(root))] = path
    if not found:
        raise UsageError(f"no .ipynb or .zip submissions found in {', '.join(map(str, paths))}")
    return sorted(found.items())


def _check_notebook(raw: bytes) -> bytes:
    if not raw.strip():
        raise Ungradable("empty file")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Ungradable("invalid notebook JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise Ungradable("not a notebook")
    try:
        nbformat.reads(raw.decode("utf-8"), as_version=4)
    except Exception:  # nbformat raises several types for malformed notebooks
        raise Ungradable("not a notebook") from None
    return raw


def notebook_bytes(path: Path) -> bytes:
    """The submission's notebook as bytes; only the ``.ipynb`` is ever taken out of a zip."""
    try:
        if path.suffix.lower() == ".ipynb":
            return _check_notebook(path.read_bytes())
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.endswith(".ipynb") and "/." not in "/" + n]
            if not names:
                raise Ungradable("no notebook in zip")
            preferred = [n for n in names if Path(n).name == "vae_hw.ipynb"]
            if len(preferred) != 1 and len(names) != 1:
                raise Ungradable("several notebooks in zip")
            return _check_notebook(zf.read((preferred or names)[0]))
    except zipfile.BadZipFile:
        raise Ungradable("unreadable zip") from None
    except OSError as e:
        raise Ungradable(f"unreadable file ({e.strerror})") from None
