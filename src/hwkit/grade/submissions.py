"""Find submissions and turn each into a notebook file to grade, or a clear status why not."""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path

import nbformat

from hwkit.errors import UsageError
from hwkit.text import display_name, short_hash

SUFFIXES = (".ipynb", ".zip")
MAX_NOTEBOOK_MB = 16  # a notebook with every output is a few hundred kB
MAX_ZIP_MB = 64
MAX_DEPTH = 64  # JSON nesting; a notebook needs about 8


class Ungradable(Exception):
    """A submission that cannot be graded; the message is its gradebook status."""


def find_submissions(paths: list[Path]) -> list[tuple[str, Path]]:
    """Return ``(name, path)`` for every ``.ipynb``/``.zip`` under ``paths``, sorted by name.

    ``name`` is the path relative to the folder it was found in (or the file name), as printable text;
    when that text is not the exact name (undecodable bytes, control characters) or two names would
    read alike, a hash of the exact name is added, so every file keeps a row of its own.
    """
    found: dict[str, Path] = {}
    for root in paths:
        if not root.exists():
            raise UsageError(f"no such file or folder: {root}")
        if root.is_file():
            if root.suffix.lower() not in SUFFIXES:
                raise UsageError(f"not a notebook or zip submission: {root}")
            _add(found, root.name, root)
            continue
        for path in sorted(_walk(root)):
            if path.suffix.lower() in SUFFIXES and ".ipynb_checkpoints" not in path.parts:
                _add(found, str(path.relative_to(root)), path)
    if not found:
        raise UsageError(f"no .ipynb or .zip submissions found in {', '.join(map(str, paths))}")
    return sorted(found.items())


def _add(found: dict[str, Path], raw: str, path: Path) -> None:
    name = display_name(raw)
    if name != raw or name in found:
        name = f"{name} [{short_hash(raw)}]"
    found[name] = path


def _walk(root: Path):
    """Every regular file under ``root``, without recursion and without following links."""
    todo = [root]
    while todo:
        try:
            entries = list(os.scandir(todo.pop()))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                todo.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                yield Path(entry.path)


def _depth(data) -> int:
    """How deeply ``data`` nests (iteratively: the input decides the depth)."""
    deepest, todo = 0, [(data, 1)]
    while todo:
        item, d = todo.pop()
        deepest = max(deepest, d)
        if deepest > MAX_DEPTH:
            return deepest
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        todo.extend((c, d + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def _check_notebook(raw: bytes) -> bytes:
    if not raw.strip():
        raise Ungradable("empty file")
    if len(raw) > MAX_NOTEBOOK_MB * 2**20:
        raise Ungradable(f"notebook too large ({len(raw) / 2**20:.0f} MB; at most {MAX_NOTEBOOK_MB} MB)")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Ungradable("invalid notebook JSON") from None
    except RecursionError:
        raise Ungradable("not a notebook (JSON nested too deeply)") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise Ungradable("not a notebook")
    if _depth(data) > MAX_DEPTH:
        raise Ungradable("not a notebook (JSON nested too deeply)")
    try:
        nbformat.reads(raw.decode("utf-8"), as_version=4)
    except Exception:  # nbformat raises several types for malformed notebooks
        raise Ungradable("not a notebook") from None
    return raw


def notebook_bytes(path: Path, assignment: str) -> bytes:
    """The submission's notebook as bytes; only the ``.ipynb`` is ever taken out of a zip (the one named
    for the ``assignment`` where it holds several)."""
    cap = MAX_NOTEBOOK_MB * 2**20
    try:
        size = path.stat().st_size
        if path.suffix.lower() == ".ipynb":
            if size > cap:
                raise Ungradable(f"notebook too large ({size / 2**20:.0f} MB; at most {MAX_NOTEBOOK_MB} MB)")
            return _check_notebook(path.read_bytes())
        if size > MAX_ZIP_MB * 2**20:
            raise Ungradable(f"zip too large ({size / 2**20:.0f} MB; at most {MAX_ZIP_MB} MB)")
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if i.filename.endswith(".ipynb") and "/." not in "/" + i.filename]
            if not infos:
                raise Ungradable("no notebook in zip")
            preferred = [i for i in infos if Path(i.filename).name == f"{assignment}.ipynb"]
            if len(preferred) != 1 and len(infos) != 1:
                raise Ungradable("several notebooks in zip")
            return _check_notebook(_read_member(zf, (preferred or infos)[0], cap))
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, RuntimeError):
        raise Ungradable("unreadable zip") from None
    except OSError as e:
        raise Ungradable(f"unreadable file ({e.strerror or e})") from None


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """A zip member's bytes, refusing encryption, unknown compression and more than ``cap`` bytes,
    whatever size the zip declares."""
    if info.flag_bits & 0x1:
        raise Ungradable("encrypted zip")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise Ungradable(f"unsupported zip compression (method {info.compress_type})")
    if info.file_size > cap:
        raise Ungradable(f"notebook in zip too large ({info.file_size / 2**20:.0f} MB; at most {MAX_NOTEBOOK_MB} MB)")
    with zf.open(info) as member:
        data = member.read(cap + 1)
    if len(data) > cap:
        raise Ungradable(f"notebook in zip too large (more than {MAX_NOTEBOOK_MB} MB)")
    return data
