"""Refuse bad bars before the engine sees them, naming the first bad row and how many share it.

Every problem is counted in one pass; the per-symbol time-order checks run only when rows are
not already in (ts, symbol) order, because that order rules them out. For bars without
missing values that pass is compiled (``backstop.data.scan``) and also makes the arrays the
engine reads, handed on in ``CheckedBars``; otherwise it is one vectorised polars pass. So
validating ten million bars costs a fraction of a second. Only when a problem is found, or the
rows need sorting, does the polars path run, to find the first bad row and word the message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from backstop.data._rows import format_ns, format_value, row_error
from backstop.data.scan import BarColumns, scan_bars
from backstop.data.schema import BAR_SCHEMA, PRICE_COLUMNS, VALUE_COLUMNS
from backstop.errors import DataError, check

_ROW = "__backstop_row"
_PREV_TS = "__backstop_prev_ts"

Describe = Callable[[dict[str, Any]], str]


@dataclass(frozen=True, slots=True)
class _Check:
    """One problem a bar can have: a row mask, and how to word it for the first bad row."""

    mask: pl.Expr
    describe: Describe


@dataclass(frozen=True, slots=True)
class CheckedBars:
    """Validated bars, and their engine arrays when the check made them on the way (``None``
    when it did not: ``bar_arrays`` makes them then)."""

    bars: pl.DataFrame
    columns: BarColumns | None = None


def validate_bars(df: pl.DataFrame, source: str, *, first_row: int = 1) -> pl.DataFrame:
    """Check normalized bars and return them sorted by (ts, symbol), stably.

    Refuse, with a ``DataError`` naming the source, row, symbol and problem: missing values,
    NaN or infinite prices or volume, non-positive prices, negative volume, ``high < low``,
    ``open`` or ``close`` outside ``[low, high]``, and timestamps that repeat or go backwards
    within a symbol (in source order). The row reported is the lowest offending one, numbered
    as the source numbers it: ``first_row`` is the number of the first data row (1 for frames
    and Parquet; a CSV loader passes 2 so that rows are file lines under a header line).
    The message also says how many rows share that problem. An empty frame is refused too:
    it almost always means a wrong file, table or filter rather than a quiet day.
    """
    return check_bars(df, source, first_row=first_row).bars


def check_bars(df: pl.DataFrame, source: str, *, first_row: int = 1) -> CheckedBars:
    """``validate_bars``, keeping the engine arrays that the compiled pass makes for bars
    without missing values already in engine order (``PreparedBars.of`` takes them)."""
    check(
        isinstance(df, pl.DataFrame) and df.schema == BAR_SCHEMA,
        DataError(
            "bars do not have the bar schema "
            f"({_schema_text(BAR_SCHEMA)}); run normalize_bars first, got "
            f"{_schema_text(df.schema) if isinstance(df, pl.DataFrame) else type(df).__name__}",
            source=source,
        ),
    )
    check(df.height > 0, DataError("no bars", source=source))
    scan = scan_bars(df)
    if scan is not None and scan.in_order and not any(scan.counts):
        return CheckedBars(scan.frame, scan.columns)
    # One chunk per column first, not last: the checks then run over contiguous columns (W's
    # Parquet file reads as 10 chunks a column: 0.95 s of CPU for the checks against 0.5 s),
    # and the engine reads the columns in place without another copy (a no-op for frames
    # that already are contiguous).
    df = df.rechunk()
    frame = df.lazy()
    checks = _value_checks()
    counts, in_order = count_problems(frame, checks)
    if not in_order:
        # Rows in (ts, symbol) order cannot repeat or reverse a symbol's ts; others need a look.
        frame = frame.with_columns(_prev_ts())
        order_checks = _order_checks()
        second = frame.select(
            chk.mask.fill_null(False).sum().alias(f"n{k}") for k, chk in enumerate(order_checks)
        ).collect()
        checks += order_checks
        counts += [int(second[f"n{k}"][0]) for k in range(len(order_checks))]
    if any(counts):
        raise _first_problem(frame, checks, counts, source, first_row)
    if in_order:
        return CheckedBars(df)
    return CheckedBars(df.sort(["ts", "symbol"], maintain_order=True).rechunk())


def count_problems(frame: pl.LazyFrame, checks: list[_Check]) -> tuple[list[int], bool]:
    """The polars pass: how many rows fail each check, and whether rows are in engine order."""
    first = frame.select(
        *(chk.mask.fill_null(False).sum().alias(f"n{k}") for k, chk in enumerate(checks)),
        _is_engine_order().alias("sorted"),
    ).collect()
    return [int(first[f"n{k}"][0]) for k in range(len(checks))], bool(first["sorted"][0])


def _first_problem(
    frame: pl.LazyFrame, checks: list[_Check], counts: list[int], source: str, first_row: int
) -> DataError:
    """Find the lowest row with any problem, and word its first problem in check order."""
    failing = [k for k, count in enumerate(counts) if count]
    # Minimum of an explicit row index: a lazy ``arg_max`` on a mask need not return the first
    # True row once polars splits the work into morsels.
    firsts = (
        frame.with_row_index(_ROW)
        .select(
            pl.col(_ROW).filter(checks[k].mask.fill_null(False)).min().alias(f"r{k}")
            for k in failing
        )
        .collect()
    )
    index, k = min((int(firsts[f"r{k}"][0]), k) for k in failing)
    return _describe(frame, index, counts[k], checks[k], source, first_row)


def _schema_text(schema: pl.Schema) -> str:
    """Write a schema as ``name: type`` pairs for an error message."""
    return ", ".join(f"{name}: {dtype}" for name, dtype in schema.items())


def _prev_ts() -> pl.Expr:
    """Take the previous bar's ``ts`` of the same symbol, in source order (null on its first)."""
    return pl.col("ts").shift(1).over("symbol").alias(_PREV_TS)


def _is_engine_order() -> pl.Expr:
    """Test whether rows already run by ts, then symbol, so the sort can be skipped."""
    ts, sym = pl.col("ts"), pl.col("symbol")
    step_ok = (ts > ts.shift(1)) | ((ts == ts.shift(1)) & (sym > sym.shift(1)))
    return step_ok.slice(1).all()


def _value_checks() -> list[_Check]:
    """List the problems of single rows, in the order used to word a row that has several."""
    checks = [
        _Check(pl.col("ts").is_null(), _fixed("ts is missing")),
        _Check(
            pl.col("symbol").is_null() | (pl.col("symbol").str.strip_chars() == ""),
            _fixed("symbol is missing"),
        ),
    ]
    for name in VALUE_COLUMNS:
        checks.append(_Check(pl.col(name).is_null(), _fixed(f"{name} is missing")))
    for name in VALUE_COLUMNS:
        checks.append(_Check(~pl.col(name).is_finite(), _value(name, "{name} is {value}")))
    for name in PRICE_COLUMNS:
        checks.append(
            _Check(
                pl.col(name).is_finite() & (pl.col(name) <= 0),
                _value(name, "{name} {value} is not positive"),
            )
        )
    checks.append(
        _Check(
            pl.col("volume").is_finite() & (pl.col("volume") < 0),
            _value("volume", "{name} {value} is negative"),
        )
    )
    finite = pl.all_horizontal(pl.col(name).is_finite() for name in PRICE_COLUMNS)
    high, low = pl.col("high"), pl.col("low")
    checks.append(
        _Check(
            finite & (high < low),
            lambda r: f"high {format_value(r['high'])} < low {format_value(r['low'])}",
        )
    )
    for name in ("open", "close"):
        outside = (pl.col(name) < low) | (pl.col(name) > high)
        checks.append(_Check(finite & (high >= low) & outside, _outside(name)))
    return checks


def _order_checks() -> list[_Check]:
    """List the problems of a symbol's time order; they need the ``_prev_ts`` column."""
    prev = pl.col(_PREV_TS)
    return [_Check(pl.col("ts") == prev, _repeat), _Check(pl.col("ts") < prev, _backwards)]


def _fixed(text: str) -> Describe:
    """Word a problem that needs no values from the row."""
    return lambda r: text


def _value(name: str, template: str) -> Describe:
    """Word a problem about one column's value."""
    return lambda r: template.format(name=name, value=format_value(r[name]))


def _outside(name: str) -> Describe:
    """Word an open or close that lies outside the bar's range."""
    return lambda r: (
        f"{name} {format_value(r[name])} outside "
        f"[low {format_value(r['low'])}, high {format_value(r['high'])}]"
    )


def _repeat(r: dict[str, Any]) -> str:
    """Word a timestamp that repeats the previous bar of the same symbol."""
    return (
        f"duplicate ts {format_ns(r['ts'])}: same timestamp as row {r['prev_row']} for this symbol"
    )


def _backwards(r: dict[str, Any]) -> str:
    """Word a timestamp earlier than the previous bar of the same symbol."""
    return (
        f"timestamps not sorted: ts {format_ns(r['ts'])} is earlier than "
        f"{format_ns(r[_PREV_TS])} at row {r['prev_row']} for this symbol"
    )


def _describe(
    frame: pl.LazyFrame, index: int, count: int, chk: _Check, source: str, first_row: int
) -> DataError:
    """Build the error for row ``index`` (0-based) of the first problem found."""
    numbered = frame.with_row_index(_ROW)
    row = numbered.filter(pl.col(_ROW) == index).collect().row(0, named=True)
    symbol = row["symbol"] or None
    if symbol is not None:
        earlier = numbered.filter((pl.col("symbol") == symbol) & (pl.col(_ROW) < index))
        last = earlier.select(pl.col(_ROW).max()).collect().item()
        row["prev_row"] = None if last is None else last + first_row
    return row_error(
        chk.describe(row), source=source, row=index + first_row, count=count, symbol=symbol
    )
