"""The test contract: a test that lets student objects or checks leak across the probe boundary is refused at build time."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from hwkit.author.build import build_assignment
from hwkit.errors import UsageError
from hwkit.author.lint import check_notebook, check_test

ROOT = Path(__file__).resolve().parents[1]

GOOD = '''
def test_q3b_values(kl_normal_standard):
    def probe_q3b_values(kl_normal_standard, mu):
        import torch
        return kl_normal_standard(mu, torch.zeros_like(mu))
    import torch
    mu = torch.zeros(3, 2)
    hints = [(1.0, "a hint")]
    out = probe_q3b_values(kl_normal_standard, mu)
    for wrong, hint in hints:
        assert float(out.sum()) != wrong, hint
    assert float(out.sum()) == 0.0, "not zero"
'''

BROKEN = {
    "the student's kl_normal_standard is used outside a probe": GOOD.replace(
        "    out = probe_q3b_values(kl_normal_standard, mu)", "    out = kl_normal_standard(mu, mu)"),
    "probe_q3b_values uses mu without receiving it as an argument": GOOD.replace(
        "def probe_q3b_values(kl_normal_standard, mu):", "def probe_q3b_values(kl_normal_standard):").replace(
        "probe_q3b_values(kl_normal_standard, mu)\n", "probe_q3b_values(kl_normal_standard)\n"),
    "probe_q3b_values asserts": GOOD.replace(
        "        return kl_normal_standard", "        assert mu.shape == (3, 2)\n        return kl_normal_standard"),
    "an assertion message must be fixed text": GOOD.replace('"not zero"', 'f"got {out}"'),
}


def test_the_master_notebook_keeps_the_contract():
    """Does every test of the master notebook keep the contract?"""
    assert check_notebook(ROOT / "assignment" / "vae_hw.ipynb") == []


def test_a_test_that_keeps_the_contract_passes():
    """Is a well-formed test (a probe that calls, a verdict that judges, hints from a literal list) accepted?"""
    assert check_test(GOOD) == []


@pytest.mark.parametrize("problem", sorted(BROKEN))
def test_each_kind_of_breach_is_named(problem):
    """Is each kind of breach reported with the test's name and what it does?"""
    found = [str(v) for v in check_test(BROKEN[problem])]
    assert any(problem in v and v.startswith("test_q3b_values, line ") for v in found), found


def test_the_build_refuses_a_breach_with_a_one_line_error(tmp_path):
    """Does `hwkit assign` refuse a master notebook whose test breaks the contract, naming the test and line?"""
    nb = nbformat.read(ROOT / "assignment" / "vae_hw.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "def test_q3b_values" in c.source)
    cell.source = cell.source.replace("out = probe_q3b_values(kl_normal_standard, mu, logvar)",
                                      "out = kl_normal_standard(mu, logvar)")
    master = tmp_path / "assignment" / "vae_hw.ipynb"
    master.parent.mkdir()
    nbformat.write(nb, master)
    with pytest.raises(UsageError) as error:
        build_assignment(master=master, dist=tmp_path / "dist", solutions=ROOT / "solutions")
    assert "test_q3b_values, line" in str(error.value) and "used outside a probe" in str(error.value)
    assert "\n" not in str(error.value)
