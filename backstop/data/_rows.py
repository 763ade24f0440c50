"""Shared wording for bar errors: the first offending row, how many share it, readable times.

Every refusal in ``backstop.data`` names the source, the row as the source numbers it, the
symbol and the problem, plus how many rows share that problem, so one error message tells a
user both where to look and how big the damage is.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from backstop.errors import DataError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def count_phrase(count: int) -> str:
    """Say how many rows share a problem, e.g. ``(3 rows with this problem)``."""
    noun = "row" if count == 1 else "rows"
    return f"({count} {noun} with this problem)"


def format_value(value: float) -> str:
    """Render a price or volume as written in the data (``NaN``, ``inf``, ``99.5``)."""
    if math.isnan(value):
        return "NaN"
    return str(value)


def format_ns(ns: int) -> str:
    """Render int64 ns since the epoch as ISO-8601 UTC, keeping sub-second digits only if any."""
    seconds, rem = divmod(int(ns), 1_000_000_000)
    text = (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    if rem:
        text += f".{rem:09d}".rstrip("0")
    return text + "Z"


def row_error(
    problem: str,
    *,
    source: str,
    row: int,
    count: int,
    symbol: str | None = None,
    column: str | None = None,
) -> DataError:
    """Build the ``DataError`` for the first offending row of a problem shared by ``count`` rows."""
    return DataError(
        f"{problem} {count_phrase(count)}", source=source, row=row, symbol=symbol, column=column
    )
