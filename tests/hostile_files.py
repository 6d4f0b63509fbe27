"""Builders of the hostile files of tests/hostile/cases.yaml that are not notebooks with an extra cell."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path


def _notebook(dist: Path) -> bytes:
    return (dist / "known" / "full-credit.ipynb").read_bytes()


def nested_json(folder: Path, dist: Path) -> Path:
    path = folder / "nested-json.ipynb"
    path.write_bytes(b'{"cells": [], "metadata": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    return path


def _zip(path: Path, data: bytes, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    with zipfile.ZipFile(path, "w", method) as zf:
        zf.writestr("vae_hw.ipynb", data)
    return path.read_bytes()


def _patch_headers(raw: bytearray, *, flags: int | None = None, method: int | None = None) -> bytearray:
    """Set the general-purpose flags and compression method in the local and central headers."""
    local, central = raw.find(b"PK\x03\x04"), raw.find(b"PK\x01\x02")
    for offset, header in ((local + 6, "local"), (central + 8, "central")):
        if flags is not None:
            raw[offset:offset + 2] = flags.to_bytes(2, "little")
        if method is not None:
            raw[offset + 2:offset + 4] = method.to_bytes(2, "little")
    return raw


def encrypted_zip(folder: Path, dist: Path) -> Path:
    path = folder / "encrypted-zip.zip"
    path.write_bytes(_patch_headers(bytearray(_zip(path, _notebook(dist))), flags=1))
    return path


def aes_zip(folder: Path, dist: Path) -> Path:
    path = folder / "aes-zip.zip"
    path.write_bytes(_patch_headers(bytearray(_zip(path, _notebook(dist))), flags=1, method=99))
    return path


def corrupt_deflate_zip(folder: Path, dist: Path) -> Path:
    path = folder / "corrupt-deflate-zip.zip"
    raw = bytearray(_zip(path, _notebook(dist)))
    start = raw.find(b"vae_hw.ipynb") + len("vae_hw.ipynb")
    raw[start + 100:start + 400] = os.urandom(300)
    path.write_bytes(raw)
    return path


def zip_bomb(folder: Path, dist: Path) -> Path:
    """About 1 MB on disk, 1 GiB once inflated."""
    path = folder / "zip-bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("vae_hw.ipynb", "w", force_zip64=True) as member:
        chunk = b" " * 2**20
        for _ in range(1024):
            member.write(chunk)
    return path


def undecodable_name(folder: Path, dist: Path) -> Path:
    raw = os.fsencode(folder) + b"/undecodable-name-caf\xe9.ipynb"
    with open(raw, "wb") as f:
        f.write(_notebook(dist))
    return Path(os.fsdecode(raw))


BUILDERS = {f.__name__: f for f in (nested_json, encrypted_zip, aes_zip, corrupt_deflate_zip, zip_bomb, undecodable_name)}
