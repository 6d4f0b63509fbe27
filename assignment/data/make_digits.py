"""Build ``digits.npz`` and ``heldout.npz``: scikit-learn's bundled 8x8 digits, binarised, with a fixed split.

Run from the repository root (needs scikit-learn, a development dependency only):

    python assignment/data/make_digits.py

The results are committed; students and the autograder load them with numpy alone.
``digits.npz`` (train and test) goes to students; ``heldout.npz``, a third part they never see,
goes only into the autograder (otter's ``autograder_files``), for the hidden tests that train a model.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

SPLIT_SEED = 0
N_TEST = 297  # ~1/6 of the 1,797 images; odd so that wrong batch reductions show
N_HELDOUT = 300  # the autograder's own: never handed out
HELDOUT = Path(__file__).with_name("heldout.npz")


def make_digits(out: Path, heldout: Path = HELDOUT) -> tuple[str, str]:
    """Write the binarised digits with a fixed train/test/held-out split; return both files' SHA-256."""
    from sklearn.datasets import load_digits  # ships inside the wheel: nothing is downloaded

    digits = load_digits()
    x = (digits.data / 16.0 >= 0.5).astype(np.uint8)  # (1797, 64) pixels in {0, 1}
    y = digits.target.astype(np.uint8)  # (1797,)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    test, held, train = order[:N_TEST], order[N_TEST:N_TEST + N_HELDOUT], order[N_TEST + N_HELDOUT:]
    np.savez_compressed(out, x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test])
    heldout.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(heldout, x_heldout=x[held], y_heldout=y[held])
    return tuple(hashlib.sha256(p.read_bytes()).hexdigest() for p in (out, heldout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("digits.npz"))
    parser.add_argument("--heldout", type=Path, default=HELDOUT)
    args = parser.parse_args()
    for path, digest in zip((args.out, args.heldout), make_digits(args.out, args.heldout)):
        print(f"{path}  sha256={digest}")


if __name__ == "__main__":
    main()
