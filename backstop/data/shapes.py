"""Bars as people have them: Yahoo / backtesting.py CSVs, pandas frames with a DatetimeIndex.

``conform_columns`` maps the column names such files use onto the bar schema before the
strict conversion in ``backstop.data.schema`` runs:

* the time: ``ts`` or (in any case) ``date``, ``datetime``, ``timestamp``, ``time``; else an
  unnamed first column (a CSV written from a pandas index, an unnamed ``DatetimeIndex``)
  unless it holds integers (then it is a row number, and the time is missing).
  An exact ``ts`` column wins over the aliases (which are then extra columns, dropped); two
  aliases with no ``ts`` are refused, since which one is the time would be a guess;
* ``open``, ``high``, ``low``, ``close``, ``volume`` and ``symbol`` in any case (``ticker``
  too); two columns naming one of them (``Close`` and ``close``) are refused;
* ``Adj Close`` is *not* the close: it is the close rescaled for later dividends and splits,
  so it is left out (and the load says so); orders fill at the prices that traded.

A frame without ``volume`` is refused (``normalize_bars`` says why: the volume-participation
cap reads it, and a made-up volume would silently change fills). ``ShapeReport`` collects what the
load assumed (the columns left out, the zone naive times were read in, daily dates) so the
run can state it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from backstop.errors import DataError

ZoneRule = Callable[[Sequence[str]], str]
"""Picks the zone of naive times from the symbols of the source (called only if needed)."""

TS_ALIASES: tuple[str, ...] = ("ts", "date", "datetime", "timestamp", "time")
PANDAS_INDEX = "__index_level_0__"  # an unnamed pandas index, as pandas writes it to Parquet
UNNAMED: tuple[str, ...] = ("", "none", "index", "unnamed: 0", PANDAS_INDEX)
ADJUSTED: tuple[str, ...] = (
    "adj close",
    "adj_close",
    "adjclose",
    "adjusted close",
    "adjusted_close",
)
_CANONICAL = {
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
    "symbol": "symbol",
    "ticker": "symbol",
}
_DATE_ONLY = r"^\s*\d{4}-\d{2}-\d{2}\s*$"
_NAIVE_TEXT = r"^\s*\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?\s*$"


@dataclass(slots=True)
class ShapeReport:
    """What a load assumed about its source, filled in while it is read."""

    notes: list[str] = field(default_factory=list)
    symbol_column: bool = False
    naive: bool = False
    zone: str | None = None
    daily: bool = False


def conform_columns(df: pl.DataFrame, source: str, report: ShapeReport | None) -> pl.DataFrame:
    """Rename the columns of ``df`` that alias a bar column; refuse ambiguous ones."""
    keys = [str(name).strip().lower() for name in df.columns]
    wanted: dict[str, list[str]] = {}
    dropped: list[str] = []
    for position, (name, key) in enumerate(zip(df.columns, keys, strict=True)):
        if key in ADJUSTED:
            dropped.append(name)
        elif key in _CANONICAL:
            wanted.setdefault(_CANONICAL[key], []).append(name)
        elif key in TS_ALIASES:
            wanted.setdefault("time", []).append(name)
        elif (
            key in UNNAMED
            and not df.schema[name].is_integer()
            and (position == 0 or key == PANDAS_INDEX)
        ):
            # an unnamed column of integers is a row number (0, 1, 2...), not a time; pandas
            # writes an unnamed index to Parquet as its last column, under its own name
            wanted.setdefault("unnamed", []).append(name)
    renames: dict[str, str] = {}
    for target in (*dict.fromkeys(_CANONICAL.values()), "time"):
        names = list(dict.fromkeys(wanted.get(target, [])))
        if target == "time":
            if "ts" in df.columns:
                continue
            if not names:
                names = wanted.get("unnamed", [])
        if len(names) > 1:
            raise _ambiguous(names, "ts" if target == "time" else target, source)
        if names and names[0] != ("ts" if target == "time" else target):
            renames[names[0]] = "ts" if target == "time" else target
    if report is not None:
        for name in dropped:
            report.notes.append(
                f"column {name!r} left out: close is the traded close, not the dividend- and "
                "split-adjusted one"
            )
        report.symbol_column = "symbol" in df.columns or "symbol" in renames.values()
    return df.drop(dropped).rename(renames)


def _ambiguous(names: list[str], target: str, source: str) -> DataError:
    """The refusal of two columns that both name one bar column."""
    listed = " and ".join(repr(n) for n in names)
    hint = (
        " (if one is the date and the other the time of day, join them into one column)"
        if target == "ts"
        else ""
    )
    return DataError(
        f"columns {listed} both name {target}: which one is meant would be a guess; drop or "
        f"rename one{hint}",
        source=source,
        column=target,
    )


def with_datetime_index(df: Any, source: str) -> Any:
    """Name a pandas ``DatetimeIndex`` so it becomes the ``ts`` column (``ts`` if unnamed);
    refuse it next to a time column, where which one is meant would be a guess."""
    times = [str(c) for c in df.columns if str(c).strip().lower() in TS_ALIASES]
    if times:
        raise DataError(
            f"the frame has a DatetimeIndex and a time column {times[0]!r}: which one is the "
            "time would be a guess (drop the column, or reset_index() the frame)",
            source=source,
            column="ts",
        )
    return df.rename_axis(df.index.name if df.index.name is not None else "ts")


def why_missing(missing: list[str]) -> str:
    """Say why a missing volume is not filled in: a made-up volume would change fills."""
    if "volume" not in missing:
        return ""
    return (
        "; backstop needs each bar's volume (the max_participation cap reads it) and does "
        "not invent one"
    )


def is_naive(col: pl.Series) -> bool:
    """Whether a ``ts`` column holds times without a zone (naive datetimes, dates, text)."""
    if col.dtype == pl.Date:
        return True
    if isinstance(col.dtype, pl.Datetime):
        return col.dtype.time_zone is None
    if col.dtype == pl.String:
        return bool(col.str.contains(_NAIVE_TEXT).fill_null(False).any())
    return False


def is_daily(col: pl.Series) -> bool:
    """Whether a ``ts`` column holds dates without a time of day."""
    if col.dtype == pl.Date:
        return True
    if isinstance(col.dtype, pl.Datetime):  # a pandas DatetimeIndex of dates: all midnight
        present = col.drop_nulls()
        return present.len() > 0 and bool((present.dt.truncate("1d") == present).all())
    if col.dtype == pl.String:
        present = col.drop_nulls()
        return present.len() > 0 and bool(present.str.contains(_DATE_ONLY).all())
    return False


def _mixed(col: pl.Series) -> bool:
    """Whether a text column mixes times without a zone and times with one (an offset, an
    epoch integer)."""
    if col.dtype != pl.String:
        return False
    present = col.drop_nulls()
    return bool((~present.str.contains(_NAIVE_TEXT)).any())


def resolve_zone(
    ts: pl.Series,
    symbols: pl.Series,
    naive_tz: str | ZoneRule | None,
    report: ShapeReport | None,
) -> str | None:
    """The zone naive times of ``ts`` are read in; a ``ZoneRule`` is asked only if needed,
    and never for text mixing times with and without an offset (a zone given outright is
    used for the ones without, as before)."""
    if report is None and not callable(naive_tz):
        return naive_tz  # nothing to decide or record: skip the scan of the column
    naive = is_naive(ts)
    zone = naive_tz
    if callable(naive_tz):
        if naive and _mixed(ts):
            return None  # some times carry a zone and some not: refused, naming the first
        zone = naive_tz(sorted(symbols.unique().drop_nulls().to_list())) if naive else None
    if report is not None and naive:
        report.naive = True
        report.zone = zone if isinstance(zone, str) else None
        report.daily = is_daily(ts)
    return zone if isinstance(zone, str) else None
