"""Build ``digits.npz``: scikit-learn's bundled 8x8 digits, binarised, with a fixed split.

Run from the repository root (needs scikit-learn, a development dependency only):

    python assignment/data/make_digits.py

The result is committed; students and the autograder load it with numpy alone.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

SPLIT_SEED = 0
N_TEST = 297  # ~1/6 of the 1,797 images; odd so that wrong batch reductions show


def make_digits(out: Path) -> str:
    """Write the binarised digits with a fixed train/test split to ``out``; return its SHA-256."""
    from sklearn.datasets import load_digits  # ships inside the wheel: nothing is downloaded

    digits = load_digits()
    x = (digits.data / 16.0 >= 0.5).astype(np.uint8)  # (1797, 64) pixels in {0, 1}
    y = digits.target.astype(np.uint8)  # (1797,)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    test, train = order[:N_TEST], order[N_TEST:]
    np.savez_compressed(out, x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test])
    return hashlib.sha256(out.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("digits.npz"))
    args = parser.parse_args()
    print(f"{args.out}  sha256={make_digits(args.out)}")


if __name__ == "__main__":
    main()
