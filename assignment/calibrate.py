"""`make calibrate`: the held-out reconstruction error that the VAE homework's hidden training test sees, over
many seeds.

Runs the hidden test ``test_q6a_learns`` from the autograder zip on the reference solutions, with
every ``torch.manual_seed`` call shifted per run (as each submission's are), and records the
held-out reconstruction error it compares with its threshold.

    python assignment/calibrate.py [--runs 20] [--dist dist]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import zipfile
from pathlib import Path

from hwkit.author.build import find_autograder
from hwkit.author.known import reference_namespace
from hwkit.errors import UsageError
from hwkit.grade.verdict import shifted_seeds

TESTS = {"q6a": "test_q6a_learns"}
COMPARISON = re.compile(r"rec < ([0-9.]+)")


class _Recorder:
    """Stands in for the threshold: records the value compared with it and lets the test pass."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def __gt__(self, other: float) -> bool:
        self.values.append(float(other))
        return True


def calibrate(*, autograder_zip: Path, autograder_dir: Path, runs: int) -> dict[str, tuple[float, list[float]]]:
    """For each training test: (threshold, held-out NELBO of the reference for ``runs`` seeds)."""
    import torch

    torch.set_num_threads(1)
    autograder_zip, autograder_dir = autograder_zip.resolve(), autograder_dir.resolve()
    env = reference_namespace(autograder_dir / "vae_hw.ipynb")
    results = {}
    cwd = os.getcwd()
    os.chdir(autograder_dir)  # the tests load data/digits.npz and data/heldout.npz
    try:
        with zipfile.ZipFile(autograder_zip) as zf:
            for q, test_name in TESTS.items():
                source = zf.read(f"tests/{q}.py").decode("utf-8")
                (threshold,) = set(COMPARISON.findall(source))
                recorder = _Recorder()
                namespace = {"_THRESHOLD": recorder}
                exec(COMPARISON.sub("rec < _THRESHOLD", source), namespace)
                case = namespace[test_name]
                for run in range(runs):
                    with shifted_seeds(100_003 * run):
                        case.call_func(env)
                results[q] = (float(threshold), recorder.values)
    finally:
        os.chdir(cwd)
    return results


def format_report(results: dict[str, tuple[float, list[float]]]) -> str:
    lines = ["| test | threshold | runs | median | min | max | margin (threshold - max) |", "|---|---|---|---|---|---|---|"]
    for q, (threshold, values) in results.items():
        lines.append(f"| {TESTS[q]} | {threshold:.1f} | {len(values)} | {statistics.median(values):.2f} | "
                     f"{min(values):.2f} | {max(values):.2f} | {threshold - max(values):.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="held-out NELBO of the reference in the hidden training tests, over seeds")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--dist", type=Path, default=Path("dist"))
    args = parser.parse_args(argv)
    try:
        results = calibrate(autograder_zip=find_autograder(args.dist), autograder_dir=args.dist / "autograder",
                            runs=args.runs)
    except UsageError as e:
        print(f"calibrate: error: {e}", file=sys.stderr)
        return 2
    print(format_report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
