"""What crosses the pipe between the parent and a sandbox worker: tagged JSON in length-prefixed frames.

Only data crosses, never objects or code (no pickle: a worker runs untrusted scripts, so what it
sends back must not be able to run anything in the parent). Plain JSON would turn tuples into
lists and int keys into strings, so a script would see different data than it does in process;
the few such types are tagged: {"__gf__": tag, "v": ...}.
"""
from __future__ import annotations

import base64
import json
import os
import select
import struct
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from types import ModuleType
from typing import Any
from uuid import UUID

TAG = "__gf__"
_HEADER = struct.Struct(">I")
_PLAIN = (str, bool, float, type(None))
_BIG = 1 << 63


class Unsendable(TypeError):
    """A value that cannot be sent to (or back from) a worker."""


def encode(v: Any) -> Any:
    """A JSON-able copy of `v`; callables and modules in a dict are left out, as the state serializer does."""
    t = type(v)
    if t in _PLAIN:
        return v
    if t is int:
        return v if -_BIG < v < _BIG else {TAG: "int", "v": format(v, "x")}
    if t is list:
        return [encode(x) for x in v]
    if t is dict:
        if all(type(k) is str for k in v) and TAG not in v:
            return {k: encode(x) for k, x in v.items() if not (callable(x) or isinstance(x, ModuleType))}
        return {TAG: "dict", "v": [[encode(k), encode(x)] for k, x in v.items()
                                   if not (callable(x) or isinstance(x, ModuleType))]}
    if t is tuple:
        return {TAG: "tuple", "v": [encode(x) for x in v]}
    if t is set or t is frozenset:
        return {TAG: t.__name__, "v": [encode(x) for x in v]}
    if t is datetime:
        return {TAG: "datetime", "v": v.isoformat()}
    if t is date:
        return {TAG: "date", "v": v.isoformat()}
    if t is dtime:
        return {TAG: "time", "v": v.isoformat()}
    if t is timedelta:
        return {TAG: "timedelta", "v": [v.days, v.seconds, v.microseconds]}
    if t is Decimal:
        return {TAG: "decimal", "v": str(v)}
    if t is UUID:
        return {TAG: "uuid", "v": str(v)}
    if t is bytes:
        return {TAG: "bytes", "v": base64.b64encode(v).decode()}
    for base in (dict, list, str, int, float):  # subclasses (OrderedDict, str enums ...) travel as their base
        if isinstance(v, base):
            return encode(base(v))
    raise Unsendable(f"a {t.__name__} value cannot be passed to or from the script sandbox")


_DECODE = {
    "int": lambda v: int(v, 16),
    "dict": lambda v: {k: x for k, x in v},
    "tuple": tuple, "set": set, "frozenset": frozenset,
    "datetime": datetime.fromisoformat, "date": date.fromisoformat, "time": dtime.fromisoformat,
    "timedelta": lambda v: timedelta(*v),
    "decimal": Decimal, "uuid": UUID,
    "bytes": base64.b64decode,
}


def _hook(d: dict) -> Any:
    tag = d.get(TAG)
    if tag is None or len(d) != 2:
        return d
    fn = _DECODE.get(tag)
    if fn is None:
        raise ValueError(f"unknown sandbox tag {tag!r}")
    return fn(d["v"])


def dumps(msg: dict) -> bytes:
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode()


def loads(raw: bytes) -> Any:
    return json.loads(raw, object_hook=_hook)


# ---- frames -------------------------------------------------------------------------------------
def write_frame(fd: int, payload: bytes) -> None:
    data = memoryview(_HEADER.pack(len(payload)) + payload)
    while data:
        n = os.write(fd, data)
        data = data[n:]


class Closed(EOFError):
    """The other end closed the pipe (the worker died)."""


class TimedOut(TimeoutError):
    pass


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimedOut()
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise Closed()
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, deadline: float | None = None, max_bytes: int | None = None) -> bytes:
    """One frame; Closed on end of file, TimedOut past `deadline` (time.monotonic()), ValueError if
    the frame announces more than `max_bytes`."""
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    if max_bytes is not None and size > max_bytes:
        raise ValueError(f"{size} bytes")
    return _read_exact(fd, size, deadline)
