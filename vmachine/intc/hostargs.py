"""Argument checks for the interrupt controllers' host interfaces.

A host call validates every argument before it changes anything and refuses
with `DeviceError("EINVAL", ...)`: a number must be an integer (an `int` or
anything with `__index__`, never a bool, float, str or None) inside its
architected range; a flag is a bool (or the integers 0 and 1); a register
image is bytes of its exact length. The checks return the value as a plain
`int` / `bool` / `bytes`, so what is stored is what was checked.
"""
from __future__ import annotations

import operator

from ..errors import DeviceError


def host_index(value, what: str) -> int:
    """`value` as an int (no bool, float, str, None...)."""
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise DeviceError("EINVAL", f"{what} must be an integer, not a bool")
    try:
        return operator.index(value)
    except TypeError:
        raise DeviceError("EINVAL",
                          f"{what} must be an integer, not {type(value).__name__}") from None


def host_int(value, what: str, lo: int, hi: int) -> int:
    """`value` as an int in lo..hi (inclusive)."""
    v = host_index(value, what)
    if not lo <= v <= hi:
        raise DeviceError("EINVAL", f"{what} {_hex(v)} out of range ({_hex(lo)}..{_hex(hi)})")
    return v


def host_flag(value, what: str) -> bool:
    """`value` as a bool: True/False, or the integers 1/0."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, int) or value not in (0, 1):
        raise DeviceError("EINVAL", f"{what} must be a bool (or 0/1), not {value!r:.40}")
    return bool(value)


def host_bytes(value, what: str, length: int) -> bytes:
    """`value` (bytes, bytearray or memoryview) as bytes of exactly `length`."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise DeviceError("EINVAL", f"{what} must be bytes, not {type(value).__name__}")
    b = bytes(value)
    if len(b) != length:
        raise DeviceError("EINVAL", f"{what} must be {length} bytes, not {len(b)}")
    return b


def host_record(value, cls: type, what: str):
    """`value` is an instance of the record type `cls`."""
    if not isinstance(value, cls):
        raise DeviceError("EINVAL", f"{what} must be a {cls.__name__}, not {type(value).__name__}")
    return value


def host_callable(value, what: str):
    if not callable(value):
        raise DeviceError("EINVAL", f"{what} must be callable, not {type(value).__name__}")
    return value


def _hex(v: int) -> str:
    return f"{v:#x}" if v >= 0 else f"-{-v:#x}"
