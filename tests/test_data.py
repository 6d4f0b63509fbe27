"""The committed digits file is what the script makes, binary, with the documented split."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "assignment" / "data" / "digits.npz"


def test_digits_shapes_and_values():
    """Are the arrays binary pixels and digit labels with a 1500/297 split?"""
    d = np.load(DATA)
    assert d["x_train"].shape == (1500, 64) and d["x_test"].shape == (297, 64)
    assert d["y_train"].shape == (1500,) and d["y_test"].shape == (297,)
    for x in (d["x_train"], d["x_test"]):
        assert set(np.unique(x)) == {0, 1}
    assert set(np.unique(d["y_train"])) == set(range(10))


def test_script_reproduces_the_committed_file(tmp_path):
    """Does make_digits.py rebuild a byte-identical file from scikit-learn's bundled digits?"""
    out = tmp_path / "digits.npz"
    subprocess.run([sys.executable, str(ROOT / "assignment/data/make_digits.py"), "--out", str(out)], check=True,
                   capture_output=True)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(DATA.read_bytes()).digest()
