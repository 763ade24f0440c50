"""A user's instrument file: symbol -> sector, tick, lot, multiplier, currency, future.

Seed 002's 30% sector cap needs every symbol's sector, and sizing needs its tick, lot and
multiplier; the registry knows only a few futures. ``backstop backtest --instruments FILE``
(and ``sweep``) reads them from a CSV or a TOML file:

CSV (``.csv``), a header with ``symbol`` and any of the other columns::

    symbol,sector,tick,lot,multiplier,currency,future
    AAPL,tech,0.01,1,1,USD,false
    XOM,energy,,,,,

TOML (``.toml``), one table per symbol with any of the same keys::

    [AAPL]
    sector = "tech"
    tick = 0.01

A value left out (an empty cell, a missing key) keeps what backstop knows of the symbol
without the file (the registry's spec, else the generic one: no tick grid, one-unit lots).
An unknown column or key, a symbol listed twice, or a value that is not a number (or is out
of range) is an error naming the file, the line (CSV) and the column or key: never a
silently skipped row.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import tomllib
from pathlib import Path
from typing import Any

from backstop.domain.instruments import Instrument, lookup
from backstop.errors import ConfigError, DataError

# file column -> (Instrument field, kind, lowest allowed, whether the lowest is allowed)
FIELDS: dict[str, tuple[str, str, float, bool]] = {
    "sector": ("sector", "text", 0.0, True),
    "tick": ("tick_size", "number", 0.0, True),
    "lot": ("lot_size", "number", 0.0, False),
    "multiplier": ("multiplier", "number", 0.0, False),
    "currency": ("currency", "text", 0.0, True),
    "future": ("is_future", "bool", 0.0, True),
}
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def read_instruments(path: str | Path) -> dict[str, Instrument]:
    """The instruments of a ``.csv`` or ``.toml`` file, by symbol (see the module doc)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("--instruments", f"no such file: {path}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "--instruments", f"not UTF-8 text (byte offset {exc.start})", source=str(path)
        ) from None
    except OSError as exc:
        raise ConfigError(
            "--instruments", f"cannot read: {exc.strerror}", source=str(path)
        ) from None
    if path.suffix.lower() == ".csv":
        return _from_csv(text, str(path))
    if path.suffix.lower() == ".toml":
        return _from_toml(text, str(path))
    raise ConfigError("--instruments", f"expected a .csv or .toml file, got {path.name}")


def _from_csv(text: str, source: str) -> dict[str, Instrument]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise DataError("empty file: expected a header with a symbol column", source=source, row=1)
    header = [h.strip() for h in header]
    for name in header:
        if name != "symbol" and name not in FIELDS:
            raise ConfigError(
                name, f"unknown column (known: symbol, {', '.join(FIELDS)})", source=f"{source}:1"
            )
    if "symbol" not in header:
        raise DataError("no symbol column", source=source, row=1, column="symbol")
    seen: dict[str, int] = {}
    out: dict[str, Instrument] = {}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise DataError(
                f"{len(cells)} cells, the header has {len(header)}", source=source, row=line
            )
        row = dict(zip(header, (c.strip() for c in cells), strict=True))
        symbol = row.pop("symbol")
        if not symbol:
            raise DataError("empty symbol", source=source, row=line, column="symbol")
        if symbol in seen:
            raise DataError(
                f"listed twice (first at line {seen[symbol]})",
                source=source,
                row=line,
                symbol=symbol,
                column="symbol",
            )
        seen[symbol] = line
        values = {}
        for name, cell in row.items():
            if cell == "":
                continue
            values[name] = _value(name, cell, source, line, symbol)
        out[symbol] = _instrument(symbol, values)
    if not out:
        raise DataError("no instrument rows", source=source)
    return out


def _from_toml(text: str, source: str) -> dict[str, Instrument]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--instruments", f"not valid TOML: {exc}", source=source) from None
    out: dict[str, Instrument] = {}
    for symbol, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(symbol, "must be a table of instrument keys", source=source)
        values = {}
        for key, value in table.items():
            if key not in FIELDS:
                raise ConfigError(
                    f"{symbol}.{key}", f"unknown key (known: {', '.join(FIELDS)})", source=source
                )
            values[key] = _checked(key, value, f"{symbol}.{key}", source)
        out[symbol] = _instrument(symbol, values)
    if not out:
        raise ConfigError("--instruments", "no instrument tables", source=source)
    return out


def _value(name: str, cell: str, source: str, line: int, symbol: str) -> Any:
    """A CSV cell as its column's type; a bad one is a DataError naming file:line, column."""
    kind = FIELDS[name][1]
    if kind == "text":
        return cell
    if kind == "bool":
        low = cell.lower()
        if low not in _TRUE + _FALSE:
            raise DataError(
                f"expected true or false, got {cell!r}",
                source=source,
                row=line,
                symbol=symbol,
                column=name,
            )
        return low in _TRUE
    try:
        number = float(cell)
    except ValueError:
        number = math.nan
    problem = _number_problem(name, number)
    if problem:
        raise DataError(
            f"{problem}, got {cell!r}", source=source, row=line, symbol=symbol, column=name
        )
    return number


def _checked(name: str, value: Any, key: str, source: str) -> Any:
    """A TOML value checked against its key's type; a bad one is a ConfigError naming it."""
    kind = FIELDS[name][1]
    if kind == "text":
        if not isinstance(value, str):
            raise ConfigError(key, f"expected text, got {value!r}", source=source)
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {value!r}", source=source)
        return value
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    problem = _number_problem(name, float(value) if ok else math.nan)
    if problem:
        raise ConfigError(key, f"{problem}, got {value!r}", source=source)
    return float(value)


def _number_problem(name: str, number: float) -> str:
    """Why ``number`` cannot be column ``name``'s value ('' when it can)."""
    _, _, lo, lo_ok = FIELDS[name]
    if not math.isfinite(number):
        return "expected a finite number"
    if number < lo or (number == lo and not lo_ok):
        return f"must be {'>=' if lo_ok else '>'} {lo:g}"
    return ""


def _instrument(symbol: str, values: dict[str, Any]) -> Instrument:
    """What backstop knows of ``symbol`` without the file, with the file's values over it."""
    base = lookup(symbol)
    changes = {FIELDS[name][0]: value for name, value in values.items()}
    return dataclasses.replace(base, symbol=symbol, **changes)
