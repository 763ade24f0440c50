"""Bars in as people have them, with every assumption stated: one file, a glob, a list of
files, or a frame; the symbol and the time zone each load used, in words.

* **Symbol.** A source with a ``symbol`` column keeps it. One without takes ``symbol`` (the
  CLI's ``--symbol``), else the file's stem (``GOOG.csv`` -> ``GOOG``), else, for a frame,
  ``FRAME_SYMBOL``. ``symbol`` names one symbol: with several files it is refused, and next
  to a ``symbol`` column holding other symbols too.
* **Time zone of naive times.** ``tz`` (the CLI's ``--tz``) when given; else the zone of the
  exchange the registry knows the symbols trade on (ES, NQ and their micros: CME,
  ``America/Chicago``); else UTC. Times that carry their zone (an offset, epoch integers,
  tz-aware datetimes) are read as they are, whatever ``tz`` says.
* **Daily bars** (a date without a time) are stamped 00:00 of their date in that zone, so
  each date reads back unchanged in it.
* **Several files** load as one panel; a (ts, symbol) bar in two files is refused naming both.

``DataInfo`` says all of this; the CLI prints it in the run summary and in ``--json``.
"""

from __future__ import annotations

import glob
import os
import zoneinfo
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from backstop.data._rows import format_ns
from backstop.data.loaders import check_frame, read_bars
from backstop.data.shapes import ShapeReport
from backstop.data.validate import CheckedBars
from backstop.domain.instruments import exchange_zone
from backstop.errors import ConfigError, DataError

FRAME_SYMBOL = "ASSET"
"""The symbol of an in-memory frame that has no symbol column and no ``symbol=``."""

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class DataInfo:
    """What a load assumed, in words: the symbol(s), the time zone, anything left out."""

    symbol: str
    timezone: str
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The keys the CLI's ``--json`` carries: ``symbol``, ``timezone``, ``data_notes``."""
        return {"symbol": self.symbol, "timezone": self.timezone, "data_notes": list(self.notes)}


def data_files(
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], source: str = "bars"
) -> list[Path]:
    """The files ``data`` names: a path, a glob (sorted matches) or a list of either."""
    items = [data] if isinstance(data, str | os.PathLike) else list(data)
    if not items:
        raise DataError("no bars files given (an empty list)", source=source)
    files: list[Path] = []
    for item in items:
        if not isinstance(item, str | os.PathLike):
            raise DataError(
                f"expected a path or a glob of bars files, got {type(item).__name__} in a list",
                source=source,
            )
        text = os.fspath(item)
        if _GLOB_CHARS & set(text):
            matches = sorted(glob.glob(text))
            if not matches:
                raise DataError("the pattern matches no file", source=text)
            files += [Path(m) for m in matches]
        else:
            files.append(Path(text))
    return files


def load_data(
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    symbol: str | None = None,
    tz: str | None = None,
    names: tuple[str, str] = ("symbol", "tz"),
) -> tuple[pl.DataFrame, DataInfo]:
    """Load, validate and join the bars of every file ``data`` names, saying what was assumed.

    ``names`` are how the caller spells ``symbol`` and ``tz`` (``--symbol``, ``--tz`` on the
    command line), so the words of a refusal or an assumption match what the user typed.
    """
    checked, info = load_checked(data, symbol=symbol, tz=tz, names=names)
    return checked.bars, info


def load_checked(
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    symbol: str | None = None,
    tz: str | None = None,
    names: tuple[str, str] = ("symbol", "tz"),
    prefetched: tuple[Path, Future[pl.DataFrame]] | None = None,
) -> tuple[CheckedBars, DataInfo]:
    """``load_data``, keeping the engine arrays that validating one file made
    (``PreparedBars.of`` takes them; a panel of several files is prepared from its frame).

    ``prefetched``: a Parquet file and its read, started earlier on a thread (the CLI starts
    it before importing the engine); used when ``data`` is that one file."""
    _check_tz(tz, names[1])
    files = data_files(data)
    if symbol is not None and len(files) > 1:
        raise ConfigError(
            names[0],
            f"names one symbol, but the data is {len(files)} files: each file's symbol comes "
            "from its symbol column or its name",
        )
    loaded, parts = [], []
    for file in files:
        report = ShapeReport()
        rule = _ZoneRule(tz)
        read = None
        if prefetched is not None and files == [prefetched[0]]:
            read = prefetched[1].result
        checked = read_bars(
            file, symbol=symbol or file.stem, naive_tz=rule.pick, report=report, read=read
        )
        _check_symbol(checked.bars, symbol, report, str(file), names[0])
        loaded.append(checked)
        parts.append(_describe(file.name, file.stem, symbol, report, rule, names))
    info = _combine(parts, [f.name for f in files])
    if len(loaded) == 1:
        return loaded[0], info
    return CheckedBars(_panel([c.bars for c in loaded], files)), info


def load_frame(
    df: Any, *, symbol: str | None = None, tz: str | None = None, source: str = "bars"
) -> tuple[pl.DataFrame, DataInfo]:
    """Load a polars or pandas frame (a ``DatetimeIndex`` is its time) the same way."""
    checked, info = frame_checked(df, symbol=symbol, tz=tz, source=source)
    return checked.bars, info


def frame_checked(
    df: Any, *, symbol: str | None = None, tz: str | None = None, source: str = "bars"
) -> tuple[CheckedBars, DataInfo]:
    """``load_frame``, keeping the engine arrays its validation made (see ``load_checked``)."""
    _check_tz(tz, "tz")
    report = ShapeReport()
    rule = _ZoneRule(tz)
    checked = check_frame(
        df, source, symbol=symbol or FRAME_SYMBOL, naive_tz=rule.pick, report=report
    )
    _check_symbol(checked.bars, symbol, report, source, "symbol")
    part = _describe("the frame", None, symbol, report, rule, ("symbol", "tz"))
    return checked, _combine([part], [source])


def _check_tz(tz: str | None, name: str) -> None:
    """Refuse a zone that is not an IANA name, even where the times carry their own."""
    if tz is None:
        return
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(
            name, f"{tz!r} is not an IANA time zone (e.g. 'UTC', 'America/New_York')"
        ) from None


class _ZoneRule:
    """The zone of naive times: ``tz`` if given, else the symbols' exchange zone, else UTC;
    remembers why, for the statement."""

    def __init__(self, tz: str | None) -> None:
        self.tz = tz
        self.why = ""

    def pick(self, symbols: Sequence[str]) -> str:
        if self.tz is not None:
            self.why = "given"
            return self.tz
        zones = {exchange_zone(s) for s in symbols}
        if len(zones) == 1 and None not in zones:
            zone = str(zones.pop())
            self.why = f"the exchange of {', '.join(symbols)}"
            return zone
        unknown = [s for s in symbols if exchange_zone(s) is None]
        if unknown:
            self.why = "no exchange known for " + ", ".join(unknown)
        else:
            self.why = "the symbols trade in different zones: " + ", ".join(symbols)
        return "UTC"


def _check_symbol(
    bars: pl.DataFrame, symbol: str | None, report: ShapeReport, source: str, name: str
) -> None:
    """Refuse ``symbol`` next to a symbol column that holds other symbols."""
    if symbol is None or not report.symbol_column:
        return
    others = sorted(set(bars.get_column("symbol").unique().to_list()) - {symbol})
    if others:
        raise ConfigError(
            name,
            f"{symbol!r} names the symbol of a source without a symbol column, but {source} has "
            f"one (holding {', '.join(others[:5])}): leave {name} out",
        )


def _describe(
    label: str,
    stem: str | None,
    symbol: str | None,
    report: ShapeReport,
    rule: _ZoneRule,
    names: tuple[str, str],
) -> tuple[str, str, list[str]]:
    """(symbol statement, zone statement, notes) of one loaded source."""
    if report.symbol_column:
        said = f"from the symbol column of {label}"
    elif symbol is not None:
        said = f"{symbol} (given: {names[0]})"
    elif stem is not None:
        said = f"{stem} (from the file name: {label} has no symbol column)"
    else:
        said = f"{FRAME_SYMBOL} (assumed: {label} has no symbol column; pass {names[0]}=...)"
    notes = list(report.notes)
    if not report.naive:
        zone = "UTC (the times carry their zone)"
        if rule.tz is not None:
            notes.append(f"{names[1]} {rule.tz} not used: the times of {label} carry their zone")
    elif rule.why == "given":
        zone = f"{report.zone} (given: {names[1]}; the times have no zone)"
    else:
        zone = f"{report.zone} (assumed: the times have no zone; {rule.why}; set {names[1]})"
    if report.naive and report.daily:
        notes.append(f"daily bars of {label}: each date stamped 00:00 {report.zone}")
    return said, zone, notes


def _combine(parts: list[tuple[str, str, list[str]]], labels: list[str]) -> DataInfo:
    """One statement for all sources: the shared wording once, else each source's."""
    notes = tuple(n for _, _, ns in parts for n in ns)
    if len(parts) == 1:
        return DataInfo(parts[0][0], parts[0][1], notes)
    symbols = "; ".join(s for s, _, _ in parts)
    zones = {z for _, z, _ in parts}
    zone = (
        zones.pop()
        if len(zones) == 1
        else "; ".join(f"{label}: {z}" for label, (_, z, _) in zip(labels, parts, strict=True))
    )
    return DataInfo(symbols, zone, notes)


def _panel(frames: list[pl.DataFrame], files: list[Path]) -> pl.DataFrame:
    """Join the bars of several files, refusing a (ts, symbol) bar given by two of them."""
    tagged = pl.concat(
        [f.with_columns(_file=pl.lit(i, dtype=pl.Int32)) for i, f in enumerate(frames)]
    )
    twice = (
        tagged.group_by("ts", "symbol", maintain_order=True)
        .agg(pl.col("_file"))
        .filter(pl.col("_file").list.len() > 1)
    )
    if twice.height:
        ts, symbol, where = twice.row(0)
        raise DataError(
            f"the bar at {format_ns(ts)} is in both {files[where[0]]} and {files[where[1]]} "
            f"({twice.height} bars are in more than one file): load each bar once",
            source=str(files[where[0]]),
            symbol=symbol,
        )
    return tagged.drop("_file").sort("ts", "symbol", maintain_order=True)
