"""TWS API framing: 4-byte big-endian length, then text fields each ending in NUL.

The client opens with ``API\\0`` followed by one framed message naming its version range
(``v157..178``); the server answers one framed message of exactly two fields (its version and
the connection time). After that every message in both directions is a framed list of fields.
Values travel as text: bools ``"1"``/``"0"``, unset numbers ``""``. Messages are read from a
byte buffer so a reader never blocks on a half message.
"""

from __future__ import annotations

import math
import struct
from typing import Any

SERVER_VERSION = 176
"""The one server version the fake announces; every message is encoded as ib_async 2.1 decodes
it at this version (``faProfile`` still present: it went at 177; no ``pendingPriceRevision``)."""

MAX_MESSAGE = 1 << 20
"""Largest message the fake accepts from a client (a guard, far above any real request)."""


class WireError(Exception):
    """The peer broke the framing (a bad prefix or an oversize message): drop the connection."""


def text(value: Any) -> str:
    """One field as TWS writes it: None -> "", bools -> "1"/"0", whole floats without noise."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return repr(value)
    return str(value)


def frame(fields: list[Any] | tuple[Any, ...]) -> bytes:
    """One message: the fields, each NUL-terminated, behind a 4-byte big-endian length."""
    body = "".join(text(f) + "\0" for f in fields).encode()
    return struct.pack(">I", len(body)) + body


def split(body: bytes) -> list[str]:
    """The fields of one message body (the trailing NUL's empty tail dropped)."""
    fields = body.decode(errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


def take_message(buf: bytearray) -> bytes | None:
    """Remove and return one complete message body from ``buf``, or None if none is whole yet."""
    if len(buf) < 4:
        return None
    (size,) = struct.unpack(">I", bytes(buf[:4]))
    if size > MAX_MESSAGE:
        raise WireError(f"message of {size} bytes is over the fake's limit of {MAX_MESSAGE}")
    if len(buf) < 4 + size:
        return None
    body = bytes(buf[4 : 4 + size])
    del buf[: 4 + size]
    return body


def take_greeting(buf: bytearray) -> tuple[int, int] | None:
    """Parse the client's opening ``API\\0`` + ``v<min>..<max>`` (removed from ``buf``).

    Returns the client's (min, max) version, None while incomplete; raises ``WireError`` when
    the bytes are not a TWS API greeting.
    """
    if len(buf) < 4:
        return None
    if bytes(buf[:4]) != b"API\0":
        raise WireError(f"expected the API\\0 greeting, got {bytes(buf[:4])!r}")
    rest = bytearray(buf[4:])
    body = take_message(rest)
    if body is None:
        return None
    del buf[: len(buf) - len(rest)]
    versions = body.decode(errors="replace").split(" ")[0]
    if not versions.startswith("v") or ".." not in versions:
        raise WireError(f"expected a version range like v157..178, got {versions!r}")
    lo, hi = versions[1:].split("..", 1)
    try:
        return int(lo), int(hi)
    except ValueError:
        raise WireError(f"expected a version range like v157..178, got {versions!r}") from None


def num(value: str, default: float = 0.0) -> float:
    """A numeric field as the client sends it ("" and the unset double read as ``default``)."""
    if value == "" or value == "1.7976931348623157e+308":
        return default
    return float(value)


def integer(value: str, default: int = 0) -> int:
    """An integer field ("" and the unset int 2147483647 read as ``default``)."""
    if value == "" or value == "2147483647":
        return default
    return int(float(value))


def flag(value: str) -> bool:
    """A bool field ("1"/"0", "" as False)."""
    return value not in ("", "0", "False", "false")
