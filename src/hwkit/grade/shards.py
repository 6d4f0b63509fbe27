"""`hwkit grade --shard K/N`: which submissions shard K of N grades, and the note a shard leaves in its folder.

A submission's shard depends on its name only (a hash of it, mod N): not on the listing order nor on
how many files there are, so re-running a shard or adding a file never moves another submission.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from hwkit.errors import UsageError

MARKER = "shard.json"  # in a shard's output folder: which shard it holds, of what, and how it ran


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, name: str) -> bool:
        """Does this shard grade the submission called ``name`` (its gradebook name)?"""
        return shard_of(name, self.count) == self.index


def parse_shard(text: str) -> Shard:
    """``"2/3"`` as Shard(2, 3); a one-line UsageError for anything else (``0/3``, ``4/3``, ``a/b``, ``3``)."""
    m = re.fullmatch(r"([0-9]{1,6})/([0-9]{1,6})", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):  # repr below escapes whatever is not printable
        raise UsageError(f"--shard must be K/N with 1 <= K <= N (e.g. 2/3), got {text[:40]!r}")
    return Shard(int(m.group(1)), int(m.group(2)))


def shard_of(name: str, count: int) -> int:
    """The shard (1 to ``count``) of the submission called ``name``: the first 8 bytes of its SHA-256, mod ``count``."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select(submissions: list[tuple[str, Path]], shard: Shard | None) -> list[tuple[str, Path]]:
    """The ``(name, path)`` pairs shard ``shard`` grades (all of them for None), in the order given."""
    return submissions if shard is None else [(n, p) for n, p in submissions if shard.holds(n)]


@dataclass(frozen=True)
class Marker:
    """What ``OUT/shard.json`` says: the shard, the submission paths it was cut from, the confinement mode."""

    shard: Shard
    submissions: list[Path]
    confinement: str | None


def read_marker(out: Path) -> Marker | None:
    """The marker of the shard graded into ``out``; None if there is none; a UsageError if it is not one."""
    path = out / MARKER
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        shard = parse_shard(f"{data['shard']}/{data['of']}")
        paths = [Path(p) for p in data["submissions"] if isinstance(p, str)]
        confinement = data.get("confinement")
        return Marker(shard, paths, confinement if isinstance(confinement, str) else None)
    except (OSError, ValueError, KeyError, TypeError, UsageError):
        raise UsageError(f"{path} is not a shard's note (expected shard, of, submissions)") from None


def mark(out: Path, shard: Shard | None, paths: list[Path], confinement: str | None) -> None:
    """Leave ``OUT/shard.json`` (shard, the submission paths it was cut from, the confinement mode) for merge;
    a whole class's folder has none."""
    if shard is None:
        (out / MARKER).unlink(missing_ok=True)
        return
    data = {"shard": shard.index, "of": shard.count, "submissions": [str(p.absolute()) for p in paths],
            "confinement": confinement}
    tmp = out / f"{MARKER}.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out / MARKER)


def check_out(out: Path, shard: Shard | None, *, force: bool) -> None:
    """Before grading into ``out``: refuse a folder whose gradebook holds another cut of the class, unless ``force``."""
    held = read_marker(out)
    held_shard = held.shard if held else None
    if held_shard != shard and (out / "gradebook.csv").exists() and not force:
        what = f"shard {held_shard}" if held_shard else "the whole class (graded without --shard)"
        wanted = f"shard {shard}" if shard else "the whole class"
        raise UsageError(f"{out} holds the gradebook of {what}, not of {wanted}: grade into another folder, "
                         "or add --force to grade it again from scratch")
