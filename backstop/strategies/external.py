"""External signals as a strategy: signals from any outside system, read from CSV or JSONL.

This is how a bot's own signal stream is put through backstop's pipeline in a backtest
(``backstop backtest --signals FILE``). Columns, by these exact names (README, "External
signals"):

- ``ts``: ISO-8601 with an offset (``2026-06-04T10:15:00-04:00``) or an integer epoch
  time, its unit read from its magnitude as for bars (``backstop.data.units``);
- ``symbol``; ``side``: ``buy`` | ``sell``; ``intent``: ``entry`` | ``exit``;
- optional ``price``, ``stop``, ``target`` (absolute), ``stop_pct``, ``target_pct``
  (fractions, 0.02 = 2%), ``conviction`` (0..100), ``target_dollars``, ``qty``,
  ``source_id`` (the feed's id: an integer, or text such as ``kevin-4411`` or a UUID,
  numbered as ``domain/intake.py`` says), ``strategy_id``, ``advisory`` (``WAIT`` |
  ``GO``) and ``advisory_confidence`` (0..1, or a percentage like ``50%``);
- and backstop extensions: ``exit_reason`` (``signal``, ``momentum_exhaustion``,
  ``cloud_flip``, ``thesis_invalidation``, ``time_stop``, ``volatility``), ``limit_price``
  (a limit entry at that price), ``scale_in_pct`` (half now, half on a pullback),
  ``exit_fraction`` (an exit's share of the position, in (0, 1]) and ``trade_type``
  (``day`` | ``swing`` | ``scalp``: the profile's end-of-day close is for day trades).

A signal is acted on at the close of the first bar of its symbol at or after its ts. An
unknown column or a bad value is a ``DataError`` naming the file, line and column: nothing is
guessed. A file with no signals at all (only a header, or only blank lines) is refused too: it
is a wrong file far more often than a quiet day, and a run on it would pass ``--check``.
Parsing is Python per line on purpose (signal files are small and every error must
point at its line); the backtest itself stays compiled.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from backstop.data.csvcheck import check_header, not_utf8_error
from backstop.data.units import UNIT_RULE, to_ns, unit_of
from backstop.domain.enums import SIGNAL_EXIT_REASONS, TRADE_TYPE_WORDS, Advice
from backstop.domain.intents import conform_intents
from backstop.errors import DataError, check

REQUIRED = ("ts", "symbol", "side", "intent")
OPTIONAL = (
    "price",
    "stop",
    "target",
    "stop_pct",
    "target_pct",
    "conviction",
    "target_dollars",
    "qty",
    "source_id",
    "strategy_id",
    "advisory",
    "advisory_confidence",
    "exit_reason",
    "limit_price",
    "scale_in_pct",
    "exit_fraction",
    "trade_type",
)
COLUMNS = REQUIRED + OPTIONAL
_POSITIVE = ("price", "stop", "target", "target_dollars", "qty", "limit_price")
_FRACTION = ("stop_pct", "target_pct", "scale_in_pct")
DEFAULT_STRATEGY = "external"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def read_signals(path: str | Path) -> pl.DataFrame:
    """Read a CSV or JSONL signal file into an intent table (``INTENT_SCHEMA``)."""
    path = Path(path)
    check(path.exists(), DataError("no such signal file", source=str(path)))
    check(path.is_file(), DataError("not a file", source=str(path)))
    try:
        rows = list(
            _jsonl_rows(path) if path.suffix.lower() in (".jsonl", ".ndjson") else _csv_rows(path)
        )
    except UnicodeDecodeError as exc:
        raise not_utf8_error(path.read_bytes(), exc, str(path)) from None
    check(
        bool(rows),
        DataError(
            "no signals: the file has no rows (a wrong or truncated file?)", source=str(path)
        ),
    )
    records = [_record(str(path), line, raw) for line, raw in rows]
    frame = pl.DataFrame(records, schema=_OUT_SCHEMA, orient="row")
    return conform_intents(frame.drop_nulls("ts"), strategy_id=DEFAULT_STRATEGY)


_OUT_SCHEMA = {
    "ts": pl.Int64,
    "symbol": pl.String,
    "side": pl.Int8,
    "intent": pl.Int8,
    "price": pl.Float64,
    "stop_px": pl.Float64,
    "target_px": pl.Float64,
    "stop_pct": pl.Float64,
    "target_pct": pl.Float64,
    "conviction": pl.Float64,
    "target_dollars": pl.Float64,
    "qty": pl.Float64,
    "source_id": pl.String,
    "strategy_id": pl.String,
    "advisory": pl.Int8,
    "advisory_confidence": pl.Float64,
    "exit_reason": pl.Int8,
    "limit_px": pl.Float64,
    "otype": pl.Int8,
    "scale_in_pct": pl.Float64,
    "exit_fraction": pl.Float64,
    "trade_type": pl.Int8,
}


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:  # a BOM is no part of a name
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(
                "empty signal file: expected a header line", source=str(path), row=1
            ) from None
        header = [h.strip() for h in header]
        check_header(header, str(path))
        _check_columns(str(path), 1, header, header=True)
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise DataError(
                    f"expected {len(header)} fields, got {len(values)}", source=str(path), row=line
                )
            yield (
                line,
                {k: v.strip() for k, v in zip(header, values, strict=True) if v.strip() != ""},
            )


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8-sig") as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"not valid JSON: {exc.msg}", source=str(path), row=line) from None
            if not isinstance(raw, dict):
                raise DataError("expected a JSON object per line", source=str(path), row=line)
            _check_columns(str(path), line, list(raw))
            yield line, {k: v for k, v in raw.items() if v is not None and v != ""}


def _check_columns(source: str, line: int, names: list[str], header: bool = False) -> None:
    """Unknown columns are errors; a CSV header must also name every required column."""
    for name in names:
        check(
            name in COLUMNS,
            DataError(
                f"unknown column (known: {', '.join(COLUMNS)})",
                source=source,
                row=line,
                column=name,
            ),
        )
    for name in REQUIRED if header else ():
        check(
            name in names,
            DataError("required column is missing", source=source, row=line, column=name),
        )


def _record(source: str, line: int, raw: dict[str, Any]) -> tuple:
    def bad(column: str, problem: str) -> DataError:
        return DataError(problem, source=source, row=line, column=column, symbol=raw.get("symbol"))

    for name in REQUIRED:
        if name not in raw:
            raise bad(name, "required value is missing")
    ts = _ts(raw["ts"], bad)
    side = {"buy": 1, "sell": -1}.get(str(raw["side"]).lower())
    if side is None:
        raise bad("side", f"must be buy or sell, got {raw['side']!r}")
    intent = {"entry": 0, "exit": 1}.get(str(raw["intent"]).lower())
    if intent is None:
        raise bad("intent", f"must be entry or exit, got {raw['intent']!r}")
    num: dict[str, float | None] = {}
    for name in (*_POSITIVE, *_FRACTION, "conviction", "advisory_confidence", "exit_fraction"):
        value = raw.get(name)
        if value is None:
            num[name] = None
            continue
        pct = name == "advisory_confidence" and isinstance(value, str) and value.endswith("%")
        try:
            x = float(str(value)[:-1]) / 100 if pct else float(value)
        except (TypeError, ValueError):
            raise bad(name, f"expected a number, got {value!r}") from None
        if not math.isfinite(x):
            raise bad(name, f"must be finite, got {value!r}")
        if name in _POSITIVE and x <= 0:
            raise bad(name, f"must be > 0, got {value!r}")
        if name in _FRACTION and not 0 < x < 1:
            raise bad(name, f"must be a fraction in (0, 1), got {value!r}")
        if name == "exit_fraction" and not 0 < x <= 1:
            raise bad(name, f"must be a fraction in (0, 1], got {value!r}")
        if name == "exit_fraction" and intent != 1:
            raise bad(name, "is for exits only (this row is an entry)")
        if name == "exit_fraction" and "qty" in raw:
            raise bad(name, "and qty both size this exit: give one")
        if name == "conviction" and not 0 <= x <= 100:
            raise bad(name, f"must be in [0, 100], got {value!r}")
        if name == "advisory_confidence" and not 0 <= x <= 1:
            raise bad(name, f"must be in [0, 1] (or a percentage), got {value!r}")
        num[name] = x
    source_id = raw.get("source_id")
    if source_id is not None:
        if isinstance(source_id, bool | float | list | dict):
            raise bad("source_id", f"expected an integer or text id, got {source_id!r}")
        source_id = str(source_id).strip()
        if source_id.lstrip("-").isdigit() and int(source_id) < 0:
            raise bad("source_id", f"must be >= 0, got {source_id}")
    advisory = None
    if "advisory" in raw:
        name = str(raw["advisory"]).upper()
        if name not in ("WAIT", "GO", "NONE"):
            raise bad("advisory", f"must be WAIT, GO or NONE, got {raw['advisory']!r}")
        advisory = int(Advice[name]) if name != "NONE" else 0
    exit_reason = None
    if "exit_reason" in raw:
        role = SIGNAL_EXIT_REASONS.get(str(raw["exit_reason"]).lower())
        if role is None:
            raise bad(
                "exit_reason",
                f"must be one of {sorted(SIGNAL_EXIT_REASONS)}, got {raw['exit_reason']!r}",
            )
        exit_reason = int(role)
    trade_type = None
    if "trade_type" in raw:
        trade_type = TRADE_TYPE_WORDS.get(str(raw["trade_type"]).lower())
        if trade_type is None:
            raise bad(
                "trade_type",
                f"must be one of {sorted(TRADE_TYPE_WORDS)}, got {raw['trade_type']!r}",
            )
    return (
        ts,
        str(raw["symbol"]),
        side,
        intent,
        num["price"],
        num["stop"],
        num["target"],
        num["stop_pct"],
        num["target_pct"],
        num["conviction"],
        num["target_dollars"],
        num["qty"],
        source_id,
        str(raw.get("strategy_id", DEFAULT_STRATEGY)),
        advisory,
        num["advisory_confidence"],
        exit_reason,
        num["limit_price"],
        1 if num["limit_price"] is not None else 0,
        num["scale_in_pct"],
        num["exit_fraction"],
        trade_type,
    )


def _ts(value: Any, bad: Any) -> int:
    """An integer epoch time (unit by magnitude), or ISO-8601 with an explicit offset (a
    naive time is ambiguous: refused); a time int64 nanoseconds cannot hold is refused."""
    if isinstance(value, bool | float):
        raise bad("ts", f"expected ISO-8601 with an offset or an integer epoch time, got {value!r}")
    if isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit()):
        ns = to_ns(int(value))
        if ns is None:
            raise bad(
                "ts",
                f"{value} read as {unit_of(int(value))[0]} ({UNIT_RULE}) is outside the "
                "int64-nanosecond range (1677-09-21 .. 2262-04-11)",
            )
        return ns
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise bad(
            "ts", f"expected ISO-8601 with an offset or an integer epoch time, got {value!r}"
        ) from None
    if parsed.tzinfo is None:
        raise bad("ts", f"{value!r} has no UTC offset: the time zone would be a guess")
    ns = ((parsed.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)) * 1_000
    if not -(2**63) <= ns <= 2**63 - 1:
        raise bad(
            "ts", f"{value!r} is outside the int64-nanosecond range (1677-09-21 .. 2262-04-11)"
        )
    return ns
