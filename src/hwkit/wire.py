"""The wire protocol between the student's processes and the grader's: JSON messages and values.

Both sides import this module, and the untrusted side imports nothing else of the grader's. A
message is one JSON object, length-prefixed by ``multiprocessing.connection``. A value a probe
returns is turned into plain JSON by ``encode`` (on the student's side) and back by ``decode`` (on
the grader's side), which checks sizes, shapes and dtypes before anything is built from it:
whatever the student's process sends, the grader allocates at most about ``MAX_MESSAGE`` bytes of
JSON and ``MAX_ELEMENTS`` numbers per message.
"""

from __future__ import annotations

import base64
import json
import math
import re

from hwkit.text import one_line  # noqa: F401  (the sandbox and the verdict take it from here)

MAX_MESSAGE = 16 * 2**20  # bytes of one message; a larger one ends the run
MAX_ELEMENTS = 2_000_000  # numbers in all the tensors of one decoded value
MAX_DEPTH = 16  # nesting of lists and dicts in a value
MAX_TEXT = 10_000  # characters of a string in a value
TENSOR = "__tensor__"
NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
DTYPES = ("float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool")


class Lost(Exception):
    """The other side stopped answering (died, closed its end, or sent garbage)."""


class BadValue(Exception):
    """A value from the student's process that does not decode (too large, malformed)."""


def send(conn, **message) -> None:
    conn.send_bytes(json.dumps(message).encode())


def receive(conn, timeout: float | None = None) -> dict:
    """The next JSON message; ``Lost`` on end of stream, silence past ``timeout``, or garbage."""
    try:
        if timeout is not None and not conn.poll(max(timeout, 0)):
            raise Lost("no answer")
        message = json.loads(conn.recv_bytes(MAX_MESSAGE))
    except (EOFError, OSError, ValueError, RecursionError, MemoryError) as e:
        raise Lost(type(e).__name__) from None
    if not isinstance(message, dict):
        raise Lost("not a message")
    return message


def _number(x):
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if x != x else ("inf" if x > 0 else "-inf")
    return x


def encode(value, depth: int = 0):
    """A probe's return value as plain JSON data: tensors and arrays tagged with dtype and shape.

    Runs on the student's side. Tensors are detached and copied exactly, as their bytes in base64
    (non-finite floats included); non-finite Python floats become the strings "nan", "inf",
    "-inf"; tuples become lists; anything else becomes its type's name.
    """
    import numpy
    import torch

    if depth > MAX_DEPTH:
        raise ValueError("the result is nested too deeply")
    if isinstance(value, numpy.ndarray):
        value = torch.from_numpy(numpy.ascontiguousarray(value))
    if isinstance(value, torch.Tensor):
        t = torch.Tensor.detach(value).cpu()
        dtype = str(t.dtype).replace("torch.", "")
        if dtype not in DTYPES:
            t, dtype = t.double(), "float64"
        t = t.contiguous().flatten()
        if dtype == "bfloat16":  # numpy has no bfloat16: its bytes travel as int16
            t = t.view(torch.int16)
        raw = t.numpy().tobytes()  # native byte order: both sides run on one machine
        return {TENSOR: dtype, "shape": list(value.shape), "data": base64.b64encode(raw).decode("ascii")}
    if isinstance(value, (bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, numpy.generic):
        return _number(value.item())
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, (list, tuple)):
        return [encode(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k)[:200]: encode(v, depth + 1) for k, v in value.items()}
    return {"__object__": identifier(type(value).__name__)}


class _Budget:
    def __init__(self):
        self.left = MAX_ELEMENTS

    def take(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise BadValue("the result is too large")


def decode(data, *, budget: _Budget | None = None, depth: int = 0):
    """Rebuild a value ``encode`` made: tensors as plain ``torch.Tensor`` of the stated dtype and shape.

    Runs on the grader's side; raises ``BadValue`` for anything malformed or too large, before
    building it.
    """
    import torch

    budget = budget or _Budget()
    if depth > MAX_DEPTH:
        raise BadValue("the result is nested too deeply")
    if isinstance(data, list):
        budget.take(len(data))
        return [decode(v, budget=budget, depth=depth + 1) for v in data]
    if isinstance(data, dict):
        if TENSOR in data:
            dtype, shape, flat = data.get(TENSOR), data.get("shape"), data.get("data")
            if dtype not in DTYPES or not isinstance(shape, list) or not isinstance(flat, str):
                raise BadValue("a malformed tensor")
            if len(shape) > 8 or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s for s in shape):
                raise BadValue("a malformed tensor shape")
            n = math.prod(shape)
            budget.take(n)
            kind = getattr(torch, dtype)
            size = n * kind.itemsize
            if not isinstance(flat, str) or len(flat) != 4 * ((size + 2) // 3):
                raise BadValue("a tensor's data does not match its shape")
            try:
                raw = bytearray(base64.b64decode(flat, validate=True))
            except ValueError:
                raise BadValue("a tensor's data is not base64") from None
            if len(raw) != size:
                raise BadValue("a tensor's data does not match its shape")
            if dtype == "bool" and raw.translate(None, b"\x00\x01"):
                raise BadValue("a bool tensor holds other bytes than 0 and 1")
            if n == 0:
                return torch.zeros(shape, dtype=kind)
            return torch.frombuffer(raw, dtype=kind).reshape(shape)
        budget.take(len(data))
        return {k: decode(v, budget=budget, depth=depth + 1) for k, v in data.items()}
    if isinstance(data, str) and data in NONFINITE:
        return NONFINITE[data]
    return data


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


def identifier(name: object) -> str:
    """``name`` if it is a short Python identifier, else ``"?"``."""
    name = str(name)
    return name if _IDENTIFIER.fullmatch(name) else "?"
