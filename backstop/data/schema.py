"""The one bar schema, and coercion of any bar frame to it.

Every loader ends here, so the engine sees exactly one layout: ``ts`` as int64 nanoseconds
since the epoch in UTC, then ``symbol``, ``open``, ``high``, ``low``, ``close`` and ``volume``.
Columns beyond these are dropped on purpose: the engine never reads them, and carrying them
would make two sources of the same bars compare unequal.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from typing import Any

import polars as pl

from backstop.data._rows import row_error
from backstop.data.shapes import (
    ShapeReport,
    ZoneRule,
    conform_columns,
    resolve_zone,
    why_missing,
    with_datetime_index,
)
from backstop.data.units import INT64_MAX, UNITS, unit_of
from backstop.errors import DataError, check

BAR_SCHEMA: pl.Schema = pl.Schema(
    {
        "ts": pl.Int64,
        "symbol": pl.String,
        "open": pl.Float64,
        "high": pl.Float64,
        "low": pl.Float64,
        "close": pl.Float64,
        "volume": pl.Float64,
    }
)
"""Column order and types of every bar frame backstop hands to the engine."""

BAR_COLUMNS: tuple[str, ...] = tuple(BAR_SCHEMA.names())
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
VALUE_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume")

_DATE = r"\d{4}-\d{2}-\d{2}"
_TIME = r"[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
_ISO_WITH_OFFSET = rf"^{_DATE}{_TIME}\s*(?:[Zz]|[+-]\d{{2}}(?::?\d{{2}})?)$"
_ISO_NAIVE = rf"^{_DATE}(?:{_TIME})?$"
_INTEGER = r"^[+-]?\d+$"


def normalize_bars(
    df: Any,
    source: str,
    *,
    default_symbol: str | None = None,
    naive_tz: str | ZoneRule | None = None,
    first_row: int = 1,
    report: ShapeReport | None = None,
) -> pl.DataFrame:
    """Coerce a bar frame to ``BAR_SCHEMA``, refusing what cannot be converted unambiguously.

    ``ts`` may be integer epoch times (seconds, ms, us or ns by magnitude, see
    ``backstop.data.units``), a ``pl.Datetime`` of any unit (tz-aware, or naive
    with ``naive_tz`` naming the IANA zone it is in), a ``pl.Date`` (naive, same rule), or
    strings: ISO-8601 with a UTC offset (``Z`` or ``+hh:mm``), ISO-8601 without offset only
    when ``naive_tz`` is given, or a plain integer string (same unit rule). A frame without a
    ``symbol`` column takes ``default_symbol``. Price and volume columns may be any numeric
    type, or strings of numbers. Extra columns are dropped. Rows keep their order and count;
    ``first_row`` is the number the source gives its first data row, so errors point at it.
    ``df`` may be polars (lazy or not) or pandas; anything else is refused naming its type.
    Column names people use (``Date``, ``Close``, an unnamed first column...) are mapped
    first (``backstop.data.shapes``); ``naive_tz`` may be a ``ZoneRule`` picking the zone from
    the symbols, and ``report`` collects what the load assumed.
    """
    if isinstance(df, pl.LazyFrame):
        df = df.collect()
    elif not isinstance(df, pl.DataFrame):
        df = from_pandas(df, source)  # pandas, or refused naming the type
    if isinstance(naive_tz, str):
        _check_zone(naive_tz, source)
    df = _with_symbol(conform_columns(df, source, report), source, default_symbol)
    missing = [name for name in BAR_COLUMNS if name not in df.columns]
    check(
        not missing,
        DataError(
            f"missing{_also_missing(missing)}{why_missing(missing)} (columns present: "
            f"{', '.join(df.columns) or 'none'})",
            source=source,
            column=missing[0] if missing else None,
        ),
    )
    symbol = _symbol_series(df, source)
    ctx = _Context(source, first_row, symbol)
    zone = resolve_zone(df["ts"], symbol, naive_tz, report)
    if zone is not None and zone is not naive_tz:
        _check_zone(zone, source)
    columns = [_ts_series(df["ts"], ctx, zone), symbol]
    columns += [_number_series(df[name], ctx) for name in VALUE_COLUMNS]
    return pl.DataFrame(columns, schema=BAR_SCHEMA)


def ts_to_ns(
    col: pl.Series,
    source: str,
    symbol: pl.Series,
    first_row: int = 1,
    *,
    naive_tz: str | None = None,
    naive_hint: str | None = None,
) -> pl.Series:
    """Convert any ``ts`` column by the bar rules (integers by magnitude, datetimes of any
    unit, ISO-8601 text) to int64 ns UTC; errors name ``source``, the row and the symbol.
    ``naive_hint`` says how to fix timestamps without a zone where ``naive_tz`` is no option."""
    ctx = _Context(source, first_row, symbol)
    if naive_hint is not None:
        ctx = _Context(source, first_row, symbol, naive_hint)
    return _ts_series(col, ctx, naive_tz).alias("ts")


def from_pandas(df: Any, source: str) -> pl.DataFrame:
    """Convert a pandas DataFrame, refusing any other type with its name."""
    import pandas as pd

    check(
        isinstance(df, pd.DataFrame),
        DataError(f"expected a polars or pandas DataFrame, got {type(df).__name__}", source=source),
    )
    with_index = "ts" not in df.columns and df.index.name == "ts"
    if "ts" not in df.columns and not with_index and isinstance(df.index, pd.DatetimeIndex):
        df = with_datetime_index(df, source)
        with_index = True
    try:
        return pl.from_pandas(df, include_index=with_index, nan_to_null=False)
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise DataError(f"cannot convert pandas frame: {_first_line(exc)}", source=source) from exc


def _first_line(exc: BaseException) -> str:
    """Keep the first line of a library error: the rest is usually hints and context."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True, slots=True)
class _Context:
    """Where a column came from, so a conversion error can name source, row and symbol."""

    source: str
    first_row: int
    symbol: pl.Series
    naive_hint: str = (
        "pass naive_tz='UTC' or the IANA zone they are in (e.g. 'America/New_York') to "
        "load_bars or load_bars_frame; on the command line --tz"
    )

    def fail(self, bad: pl.Series, problem: str, column: str) -> DataError:
        """Build the error for the first True row of ``bad``, counting all its True rows."""
        bad = bad.fill_null(False)
        index = int(bad.arg_true()[0])
        return row_error(
            problem,
            source=self.source,
            row=index + self.first_row,
            count=int(bad.sum()),
            symbol=self.symbol[index],
            column=column,
        )


def _also_missing(missing: list[str]) -> str:
    """Name the missing columns after the first, which the error already names."""
    return f" (and {', '.join(missing[1:])})" if len(missing) > 1 else ""


def _check_zone(tz: str, source: str) -> None:
    """Refuse a time zone name that is not an IANA zone (``UTC``, ``America/New_York``)."""
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise DataError(
            f"naive_tz {tz!r} is not an IANA time zone (e.g. 'UTC', 'America/New_York')",
            source=source,
        ) from exc


def _with_symbol(df: pl.DataFrame, source: str, default_symbol: str | None) -> pl.DataFrame:
    """Add the constant ``symbol`` column a single-symbol source leaves out."""
    if "symbol" in df.columns:
        return df
    check(
        default_symbol is not None,
        DataError(
            "missing: pass symbol=... to name the one symbol of this source",
            source=source,
            column="symbol",
        ),
    )
    check(
        isinstance(default_symbol, str) and bool(default_symbol.strip()),
        DataError(f"symbol must be a non-empty string, got {default_symbol!r}", source=source),
    )
    return df.with_columns(symbol=pl.lit(default_symbol, dtype=pl.String))


def _symbol_series(df: pl.DataFrame, source: str) -> pl.Series:
    """Return ``symbol`` as strings (categoricals and integer tickers become text)."""
    col = df["symbol"]
    dtype = col.dtype
    ok = dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum) or dtype.is_integer()
    check(
        ok,
        DataError(f"has type {dtype}, expected text", source=source, column="symbol"),
    )
    return col.cast(pl.String).alias("symbol")


def _number_series(col: pl.Series, ctx: _Context) -> pl.Series:
    """Return a price or volume column as Float64; a string that is no number names its row."""
    name = col.name
    if col.dtype.is_numeric():
        return col.cast(pl.Float64)
    check(
        col.dtype == pl.String,
        DataError(f"has type {col.dtype}, expected a number", source=ctx.source, column=name),
    )
    values = col.str.strip_chars().cast(pl.Float64, strict=False)
    bad = col.is_not_null() & values.is_null()
    if bad.any():
        first = col.filter(bad)[0]
        raise ctx.fail(bad, f"{first!r} is not a number", name)
    return values


def _ts_series(col: pl.Series, ctx: _Context, naive_tz: str | None) -> pl.Series:
    """Return ``ts`` as int64 ns UTC from integers, datetimes, dates or ISO-8601 strings."""
    dtype = col.dtype
    if dtype.is_integer():
        return _int_ts(col, ctx)
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        return _datetime_ts(col, ctx, naive_tz)
    if dtype == pl.String:
        return _string_ts(col, ctx, naive_tz)
    raise DataError(
        f"has type {dtype}, expected an integer epoch time, a datetime or ISO-8601 text",
        source=ctx.source,
        column="ts",
    )


def _int_ts(col: pl.Series, ctx: _Context) -> pl.Series:
    """Read integer timestamps in the unit their magnitude gives (``backstop.data.units``)."""
    if col.dtype == pl.Int64:  # nothing to convert, so nothing that does not fit
        return scale_int_ts(col, ctx).alias("ts")
    values = col.cast(pl.Int64, strict=False)
    bad = col.is_not_null() & values.is_null()
    if bad.any():
        raise ctx.fail(bad, f"{col.filter(bad)[0]} does not fit int64 nanoseconds", "ts")
    return scale_int_ts(values, ctx).alias("ts")


def scale_int_ts(values: pl.Series, ctx: _Context) -> pl.Series:
    """Int64 epoch values -> ns by the magnitude rule; refuse mixed units and overflow.

    The unit is that of the largest absolute value; any non-zero value smaller than that
    unit's band (seconds among milliseconds) is refused, as is a value whose time lies
    outside what int64 nanoseconds hold (a date past 2262 must not wrap into 1815).

    The extremes decide most columns without a pass over the values: the largest magnitude
    is that of the minimum or the maximum, a column whose values all lie beyond its unit's
    band on one side of zero holds no other unit, and one in nanoseconds cannot overflow.
    """
    if values.null_count() == len(values):
        return values
    lo, hi = int(values.min()), int(values.max())  # type: ignore[arg-type]
    if lo == -INT64_MAX - 1:  # its absolute value is no int64: polars' rules decide
        return _scale_by_masks(values, ctx)
    top = max(abs(lo), abs(hi))
    name, factor = unit_of(top)
    lower = _band_start(name)
    one_unit = lo >= lower or hi <= -lower
    if one_unit and top <= INT64_MAX // factor:
        return values if factor == 1 else values * factor
    return _scale_by_masks(values, ctx)


def _band_start(name: str) -> int:
    """Where the band of unit ``name`` starts: where the next smaller unit's band ends."""
    lower = 0
    for unit, _, below in UNITS:
        if unit == name:
            break
        lower = below
    return lower


def _scale_by_masks(values: pl.Series, ctx: _Context) -> pl.Series:
    """``scale_int_ts`` by a mask per rule, naming the first value that breaks one."""
    mag = values.abs()
    top = mag.max()
    name, factor = unit_of(int(top))  # type: ignore[arg-type]
    lower = _band_start(name)
    span = f"(the column spans {values.min()} .. {values.max()})"
    mixed = (mag > 0) & (mag < lower)
    if mixed.any():
        first = int(values.filter(mixed.fill_null(False))[0])
        raise ctx.fail(
            mixed,
            f"{first} is in {unit_of(first)[0]} by its size, but the largest value {top} is in "
            f"{name}: one column takes one unit {span}",
            "ts",
        )
    if factor == 1:
        return values
    over = mag > INT64_MAX // factor
    if over.any():
        first = int(values.filter(over.fill_null(False))[0])
        raise ctx.fail(
            over,
            f"{first} read as {name} is outside the int64-nanosecond range "
            f"(1677-09-21 .. 2262-04-11) {span}",
            "ts",
        )
    return values * factor


def _datetime_ts(col: pl.Series, ctx: _Context, naive_tz: str | None) -> pl.Series:
    """Convert a (tz-aware, or naive in ``naive_tz``) datetime or date column to ns UTC."""
    if col.dtype == pl.Date:
        col = col.cast(pl.Datetime("ns"))
    if getattr(col.dtype, "time_zone", None) is None:
        check(
            naive_tz is not None,
            DataError(
                f"timestamps have no time zone: {ctx.naive_hint}",
                source=ctx.source,
                column="ts",
            ),
        )
        col = _localize(col, ctx, str(naive_tz))
    return _epoch_ns(col, ctx)


def _localize(col: pl.Series, ctx: _Context, tz: str) -> pl.Series:
    """Attach ``tz`` to naive datetimes, naming the first wall time a DST change makes unusable."""
    local = col.dt.replace_time_zone(tz, ambiguous="null", non_existent="null")
    bad = col.is_not_null() & local.is_null()
    if bad.any():
        first = col.filter(bad)[0]
        raise ctx.fail(bad, f"{first} is ambiguous or does not exist in {tz} (a DST change)", "ts")
    return local


def _epoch_ns(col: pl.Series, ctx: _Context) -> pl.Series:
    """Turn an aware datetime into int64 ns, refusing dates outside the int64-ns range."""
    values = col.cast(pl.Datetime("ns", getattr(col.dtype, "time_zone", None)), strict=False)
    bad = col.is_not_null() & values.is_null()
    if bad.any():
        try:
            first = str(col.filter(bad)[0])
        except (OverflowError, ValueError):  # past 9999 Python has no datetime: polars' text
            first = str(col.filter(bad).cast(pl.String)[0])
        raise ctx.fail(bad, f"{first} is outside the int64-nanosecond range", "ts")
    return values.dt.epoch("ns").alias("ts")


def _string_ts(col: pl.Series, ctx: _Context, naive_tz: str | None) -> pl.Series:
    """Parse ISO-8601 text (with offset; without only given ``naive_tz``) or integer ns text."""
    text = col.str.strip_chars()
    present = text.is_not_null()
    is_int = text.str.contains(_INTEGER).fill_null(False)
    has_offset = text.str.contains(_ISO_WITH_OFFSET).fill_null(False)
    is_naive = text.str.contains(_ISO_NAIVE).fill_null(False)

    unknown = present & ~(is_int | has_offset | is_naive)
    if unknown.any():
        first = col.filter(unknown)[0]
        raise ctx.fail(unknown, f"{first!r} is not an ISO-8601 timestamp", "ts")
    if naive_tz is None and is_naive.any():
        first = col.filter(is_naive)[0]
        raise ctx.fail(
            is_naive,
            f"{first!r} has no UTC offset: write it with one (e.g. "
            f"'2020-01-02T09:30:00-05:00' or '...Z') or {ctx.naive_hint}",
            "ts",
        )

    frame = pl.DataFrame({"text": text, "is_int": is_int, "off": has_offset, "naive": is_naive})
    parsed = frame.select(
        as_int=pl.when("is_int").then(pl.col("text")).cast(pl.Int64, strict=False),
        aware=pl.when("off")
        .then(pl.col("text"))
        .str.to_datetime(time_unit="ns", time_zone="UTC", strict=False)
        .dt.epoch("ns"),
        # the same text in microseconds: a date past 2262 wraps around in ns, never in us
        aware_us=pl.when("off")
        .then(pl.col("text"))
        .str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
        .dt.epoch("us"),
        naive=pl.when("naive").then(pl.col("text")).str.to_datetime(time_unit="ns", strict=False),
        naive_us=pl.when("naive")
        .then(pl.col("text"))
        .str.to_datetime(time_unit="us", strict=False)
        .dt.epoch("us"),
    )
    failed = (is_int & parsed["as_int"].is_null()) | (has_offset & parsed["aware"].is_null())
    failed = failed | (is_naive & parsed["naive"].is_null())
    if failed.any():
        first = col.filter(failed)[0]
        raise ctx.fail(failed, f"{first!r} cannot be read as a timestamp", "ts")

    us = parsed["aware_us"].fill_null(parsed["naive_us"])
    wrapped = us.is_not_null() & (us.abs() > INT64_MAX // 1000)
    if wrapped.any():
        first = col.filter(wrapped.fill_null(False))[0]
        raise ctx.fail(
            wrapped,
            f"{first!r} is outside the int64-nanosecond range (1677-09-21 .. 2262-04-11)",
            "ts",
        )
    as_int = parsed["as_int"]
    if is_int.any():
        as_int = scale_int_ts(as_int, ctx)
    values = parsed["aware"].fill_null(as_int)
    if is_naive.any():
        local = _epoch_ns(_localize(parsed["naive"], ctx, str(naive_tz)), ctx)
        values = values.fill_null(local)
    return values.alias("ts")
