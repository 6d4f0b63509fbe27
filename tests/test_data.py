"""The committed digits files are what the script makes, binary, with the documented three-way split."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "assignment" / "data" / "digits.npz"
HELDOUT = ROOT / "assignment" / "data" / "heldout.npz"


def test_digits_shapes_and_values():
    """Are the arrays binary pixels and digit labels with a 1200/297 split for students and 300 held out?"""
    d, h = np.load(DATA), np.load(HELDOUT)
    assert d["x_train"].shape == (1200, 64) and d["x_test"].shape == (297, 64) and h["x_heldout"].shape == (300, 64)
    assert d["y_train"].shape == (1200,) and d["y_test"].shape == (297,) and h["y_heldout"].shape == (300,)
    for x in (d["x_train"], d["x_test"], h["x_heldout"]):
        assert set(np.unique(x)) == {0, 1}
    assert set(np.unique(d["y_train"])) == set(range(10)) == set(np.unique(h["y_heldout"]))


@pytest.mark.slow
def test_script_reproduces_the_committed_files(tmp_path):
    """Does make_digits.py rebuild byte-identical files from scikit-learn's bundled digits?"""
    out, heldout = tmp_path / "digits.npz", tmp_path / "heldout.npz"
    subprocess.run([sys.executable, str(ROOT / "assignment/data/make_digits.py"), "--out", str(out), "--heldout", str(heldout)],
                   check=True, capture_output=True)
    for made, committed in ((out, DATA), (heldout, HELDOUT)):
        assert hashlib.sha256(made.read_bytes()).digest() == hashlib.sha256(committed.read_bytes()).digest()
