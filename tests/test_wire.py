"""The wire format: values cross exactly, and nothing the student's side sends makes the grader build more than the caps."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest
import torch

from hwkit.wire import MAX_DEPTH, MAX_ELEMENTS, TENSOR, BadValue, decode, encode


def crossed(value):
    return decode(json.loads(json.dumps(encode(value), allow_nan=False)))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_floats_cross_bit_for_bit(dtype):
    """Does every float, non-finite ones and a non-contiguous view included, come back with its exact bits?"""
    t = torch.tensor([[0.1, -2.5e-8, math.nan], [math.inf, -math.inf, 3.0]], dtype=torch.float64).to(dtype).t()
    back = crossed(t)
    assert back.dtype == dtype and back.shape == t.shape
    bits = {2: torch.int16, 4: torch.int32, 8: torch.int64}[dtype.itemsize]
    assert torch.equal(back.contiguous().view(bits), t.contiguous().view(bits))


@pytest.mark.parametrize("t", [torch.arange(-3, 3, dtype=torch.int64), torch.tensor([255, 0], dtype=torch.uint8),
                               torch.tensor([True, False]), torch.zeros(0, 3), torch.tensor(7.0),
                               torch.ones(2, requires_grad=True) * 2])
def test_other_tensors_cross(t):
    back = crossed(t)
    assert back.dtype == t.dtype and back.shape == t.shape and torch.equal(back, t.detach())
    assert not back.requires_grad


def test_containers_and_arrays_cross():
    value = {"a": [1, 2.5, None, True, "text", math.nan], "b": (np.arange(3.0), torch.zeros(2, dtype=torch.int32))}
    back = crossed(value)
    assert back["a"][:5] == [1, 2.5, None, True, "text"] and math.isnan(back["a"][5])
    assert torch.equal(back["b"][0], torch.arange(3.0, dtype=torch.float64)) and back["b"][1].dtype == torch.int32
    assert crossed(object()) == {"__object__": "object"}


def tensor(dtype: str, shape, data) -> dict:
    return {TENSOR: dtype, "shape": shape, "data": data}


@pytest.mark.parametrize("data, message", [
    (tensor("float64", [MAX_ELEMENTS + 1], ""), "too large"),  # refused before its data is looked at
    (tensor("float32", [2**40, 2**40], "AAAA"), "too large"),
    ([tensor("uint8", [MAX_ELEMENTS // 2 + 1], base64.b64encode(bytes(MAX_ELEMENTS // 2 + 1)).decode())] * 2,
     "too large"),  # the cap is over the whole value
    (tensor("float32", [2], "AAAA"), "does not match"),  # 3 bytes for 8
    (tensor("float32", [1], "AAAAAAAA"), "does not match"),  # 6 bytes for 4
    (tensor("float32", [2], "AA!AAAAAAAA="), "not base64"),
    (tensor("bool", [2], base64.b64encode(b"\x02\x00").decode()), "other bytes"),
    (tensor("complex64", [1], "AAAAAAAAAAA="), "malformed tensor"),
    (tensor("float32", [-1], ""), "malformed tensor shape"),
    (tensor("float32", [1] * 9, "AAAAAA=="), "malformed tensor shape"),
    (tensor("float32", [True], "AAAAAA=="), "malformed tensor shape"),
    (tensor("float32", [1], [0.0]), "malformed tensor"),  # numbers as a list are not the format
])
def test_malformed_or_oversized_values_are_refused(data, message):
    """Is each malformed or oversized value refused with BadValue, before anything is built from it?"""
    with pytest.raises(BadValue, match=message):
        decode(data)


def test_nesting_is_capped():
    value = [1]
    for _ in range(MAX_DEPTH + 2):
        value = [value]
    with pytest.raises(BadValue, match="nested too deeply"):
        decode(value)
    with pytest.raises(ValueError, match="nested too deeply"):
        encode(value)
