"""``incident.toml``: what a scenario folder holds and how to read each of its files.

The file names the incident, the zone its logs were written in, the instruments, the position
(and equity) at the start as the bot believed it and as the broker held it, and the inputs
with their formats. DIALECTS.md beside this file documents the format; every key is
validated here (unknown keys, bad values and missing files are ``ConfigError``s naming the
key), so ``load`` only reads what is known to be well-formed.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backstop.errors import ConfigError
from backstop.replay.issues import read_text
from backstop.replay.times import LocalZone, parse_iso_ns

ErrorFactory = Callable[[str, str], ConfigError]
"""Builds the ConfigError for a key and a problem, naming the file being validated."""

INCIDENT_FILE = "incident.toml"
FORMATS = ("jsonl", "alpaca_orders", "ibkr_flex", "ibkr_csv", "bars", "auto")
"""Input formats besides ``dialect:NAME`` (a shipped dialect, or a ``.toml`` path)."""

_TOP = frozenset({"name", "description", "tz", "instruments", "start", "input"})
_START = frozenset({"ts", "bot", "broker", "equity", "cash"})
_INPUT = frozenset({"path", "format", "symbol", "timezone", "description"})
_SPEC = frozenset({"tick", "multiplier"})


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One input file of a scenario: where it is and how to read it."""

    path: Path
    format: str
    symbol: str | None = None
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class StartSpec:
    """Positions (bot belief, broker truth) and account equity at the start of the incident.

    ``ts`` is ``None`` when the file leaves it to the first event's time. ``source`` is
    ``incident.toml:LINE`` of the ``[start]`` table, the source of the events it becomes.
    """

    ts: int | None
    bot: dict[str, float]
    broker: dict[str, float]
    equity: float | None
    cash: float | None
    source: str


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """A validated ``incident.toml``."""

    path: Path
    name: str
    description: str
    tz: str
    instruments: dict[str, dict[str, float]]
    start: StartSpec | None
    inputs: tuple[InputSpec, ...]


def read_scenario(folder: Path) -> ScenarioSpec:
    """Read and validate ``folder/incident.toml``."""
    path = folder / INCIDENT_FILE
    source = str(path)

    def err(key: str, problem: str) -> ConfigError:
        return ConfigError(key, problem, source=source)

    if not path.is_file():
        raise err(INCIDENT_FILE, f"no {INCIDENT_FILE} in {folder}")
    try:
        text = read_text(path)
    except ValueError as exc:
        raise err(INCIDENT_FILE, str(exc)) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise err("(toml)", str(exc)) from None
    _known(doc, _TOP, "", err)
    name = _str(doc, "name", err)
    tz = _str(doc, "tz", err)
    try:
        zone = LocalZone(tz)
    except ValueError as exc:
        raise err("tz", str(exc)) from None
    raw_inputs = doc.get("input")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise err("input", "needs at least one [[input]] table")
    start = doc.get("start")
    return ScenarioSpec(
        path=path,
        name=name,
        description=str(doc.get("description", "")),
        tz=tz,
        instruments=_instruments(doc.get("instruments", {}), err),
        start=None if start is None else _start(start, zone, f"{source}:{_line(text)}", err),
        inputs=tuple(_input(raw, i, folder, err) for i, raw in enumerate(raw_inputs)),
    )


def _known(table: dict[str, Any], allowed: frozenset[str], prefix: str, err: ErrorFactory) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise err(f"{prefix}{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _str(table: dict[str, Any], key: str, err: ErrorFactory, prefix: str = "") -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise err(f"{prefix}{key}", "required, a non-empty string")
    return value


def _number(value: object, key: str, err: ErrorFactory) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise err(key, f"must be a number, got {value!r}")
    return float(value)


def _instruments(raw: object, err: ErrorFactory) -> dict[str, dict[str, float]]:
    if not isinstance(raw, dict):
        raise err("instruments", "must be a table of [instruments.SYMBOL] tables")
    out: dict[str, dict[str, float]] = {}
    for symbol, spec in raw.items():
        key = f"instruments.{symbol}"
        if not isinstance(spec, dict):
            raise err(key, "must be a table with tick and multiplier")
        _known(spec, _SPEC, f"{key}.", err)
        values = {}
        for field in sorted(_SPEC):
            if field not in spec:
                raise err(f"{key}.{field}", "required")
            number = _number(spec[field], f"{key}.{field}", err)
            if number <= 0:
                raise err(f"{key}.{field}", f"must be > 0, got {number:g}")
            values[field] = number
        out[symbol] = values
    return out


def _line(text: str) -> int:
    for i, line in enumerate(text.splitlines(), start=1):
        if re.match(r"^\s*\[start\]", line):
            return i
    return 1


def _start(raw: object, zone: LocalZone, source: str, err: ErrorFactory) -> StartSpec:
    if not isinstance(raw, dict):
        raise err("start", "must be a table")
    _known(raw, _START, "start.", err)
    ts: int | None = None
    value = raw.get("ts")
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    if value is not None:
        if not isinstance(value, str):
            raise err("start.ts", "must be an ISO-8601 time (naive: read in tz)")
        try:
            ts = parse_iso_ns(value, zone)
        except ValueError as exc:
            raise err("start.ts", str(exc)) from None
    positions = {}
    for side in ("bot", "broker"):
        table = raw.get(side, {})
        if not isinstance(table, dict):
            raise err(f"start.{side}", "must be a table of SYMBOL = signed quantity")
        positions[side] = {s: _number(q, f"start.{side}.{s}", err) for s, q in table.items()}
    equity = raw.get("equity")
    cash = raw.get("cash")
    return StartSpec(
        ts=ts,
        bot=positions["bot"],
        broker=positions["broker"],
        equity=None if equity is None else _number(equity, "start.equity", err),
        cash=None if cash is None else _number(cash, "start.cash", err),
        source=source,
    )


def _input(raw: object, i: int, folder: Path, err: ErrorFactory) -> InputSpec:
    key = f"input[{i}]"
    if not isinstance(raw, dict):
        raise err(key, "must be a table")
    _known(raw, _INPUT, f"{key}.", err)
    path = folder / _str(raw, "path", err, f"{key}.")
    if not path.is_file():
        raise err(f"{key}.path", f"no such file: {path}")
    fmt = raw.get("format", "auto")
    if not isinstance(fmt, str) or not (fmt in FORMATS or fmt.startswith("dialect:")):
        raise err(f"{key}.format", f"must be one of {list(FORMATS)} or dialect:NAME, got {fmt!r}")
    symbol = raw.get("symbol")
    if symbol is not None and (not isinstance(symbol, str) or not fmt.startswith("dialect:")):
        raise err(f"{key}.symbol", "a default symbol string, only for dialect:NAME inputs")
    timezone = raw.get("timezone")
    if timezone is not None:
        if not isinstance(timezone, str) or fmt in ("jsonl", "alpaca_orders", "bars"):
            raise err(f"{key}.timezone", "a zone name, only for dialect and ibkr inputs")
        try:
            LocalZone(timezone)
        except ValueError as exc:
            raise err(f"{key}.timezone", str(exc)) from None
    return InputSpec(path=path, format=fmt, symbol=symbol, timezone=timezone)
