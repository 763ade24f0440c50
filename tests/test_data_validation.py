"""Validation refuses each kind of bad bar, naming the first row, its symbol and the count."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from backstop.data import BAR_SCHEMA, validate_bars
from backstop.errors import DataError

T0 = 1_577_975_400_000_000_000  # 2020-01-02T14:30:00Z
MINUTE = 60_000_000_000


def bars(n: int = 6, symbols: tuple[str, ...] = ("AAPL",)) -> pl.DataFrame:
    """Build valid bars, one per symbol per minute, in (ts, symbol) order: a clean baseline."""
    rows = []
    for i in range(n):
        for symbol in symbols:
            price = 100.0 + i
            rows.append((T0 + i * MINUTE, symbol, price, price + 1.0, price - 1.0, price, 500.0))
    return pl.DataFrame(rows, schema=BAR_SCHEMA, orient="row")


def set_value(df: pl.DataFrame, rows: list[int], column: str, value: float) -> pl.DataFrame:
    """Overwrite ``column`` at 0-based ``rows`` with ``value``."""
    hit = pl.int_range(pl.len()).is_in(rows)
    return df.with_columns(pl.when(hit).then(pl.lit(value)).otherwise(pl.col(column)).alias(column))


def refusal(df: pl.DataFrame, source: str = "bars", first_row: int = 1) -> DataError:
    """Validate ``df`` and return the DataError it must raise."""
    with pytest.raises(DataError) as info:
        validate_bars(df, source, first_row=first_row)
    return info.value


def test_valid_bars_pass_unchanged() -> None:
    df = bars(5, ("AAPL", "MSFT"))
    out = validate_bars(df, "bars")
    assert out.equals(df)
    assert out.schema == BAR_SCHEMA


def test_nan_price_names_row_symbol_and_count() -> None:
    df = set_value(bars(6), [2, 4], "close", math.nan)
    err = refusal(df, "bars.parquet")
    assert str(err) == "bars.parquet:3, symbol AAPL: close is NaN (2 rows with this problem)"
    assert (err.source, err.row, err.symbol) == ("bars.parquet", 3, "AAPL")


def test_infinite_volume_is_refused() -> None:
    df = set_value(bars(6), [5], "volume", math.inf)
    assert str(refusal(df)) == "bars:6, symbol AAPL: volume is inf (1 row with this problem)"


def test_negative_infinite_price_is_refused() -> None:
    df = set_value(bars(6), [1], "low", -math.inf)
    assert str(refusal(df)) == "bars:2, symbol AAPL: low is -inf (1 row with this problem)"


def test_missing_value_is_refused() -> None:
    df = bars(6).with_columns(
        open=pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("open"))
    )
    assert str(refusal(df)) == "bars:4, symbol AAPL: open is missing (1 row with this problem)"


def test_non_positive_price_is_refused() -> None:
    df = set_value(bars(6, ("AAPL", "MSFT")), [3], "low", 0.0)
    df = set_value(df, [7, 9], "low", -2.0)
    err = refusal(df)
    assert str(err) == "bars:4, symbol MSFT: low 0.0 is not positive (3 rows with this problem)"


def test_high_below_low_is_refused() -> None:
    df = set_value(bars(20), [13, 15, 18], "high", 99.5)
    df = set_value(df, [13, 15, 18], "low", 100.2)
    df = set_value(df, [13, 15, 18], "open", 99.8)
    df = set_value(df, [13, 15, 18], "close", 99.8)
    err = refusal(df, "bars.csv", first_row=2)
    assert str(err) == "bars.csv:15, symbol AAPL: high 99.5 < low 100.2 (3 rows with this problem)"
    assert err.row == 15


def test_open_outside_range_is_refused() -> None:
    df = set_value(bars(6), [4], "open", 200.0)
    err = refusal(df)
    assert str(err) == (
        "bars:5, symbol AAPL: open 200.0 outside [low 103.0, high 105.0] (1 row with this problem)"
    )


def test_close_outside_range_is_refused() -> None:
    df = set_value(bars(6, ("AAPL", "MSFT")), [0, 1, 2], "close", 50.0)
    err = refusal(df)
    assert str(err) == (
        "bars:1, symbol AAPL: close 50.0 outside [low 99.0, high 101.0] (3 rows with this problem)"
    )


def test_negative_volume_is_refused() -> None:
    df = set_value(bars(6), [2], "volume", -1.0)
    assert (
        str(refusal(df)) == "bars:3, symbol AAPL: volume -1.0 is negative (1 row with this problem)"
    )


def test_unsorted_timestamps_within_a_symbol_are_refused() -> None:
    df = bars(4, ("AAPL", "MSFT"))  # rows: A0 M0 A1 M1 A2 M2 A3 M3
    order = [0, 1, 4, 3, 2, 5, 6, 7]  # AAPL: t0, t2, t1, t3 -> row 5 goes back
    err = refusal(df[order])
    assert str(err) == (
        "bars:5, symbol AAPL: timestamps not sorted: ts 2020-01-02T14:31:00Z is earlier than "
        "2020-01-02T14:32:00Z at row 3 for this symbol (1 row with this problem)"
    )


def test_duplicate_timestamp_within_a_symbol_is_refused() -> None:
    df = bars(4, ("AAPL", "MSFT"))
    df = df.with_columns(ts=pl.when(pl.int_range(pl.len()) == 5).then(T0 + MINUTE).otherwise("ts"))
    err = refusal(df, "x.parquet")
    assert str(err) == (
        "x.parquet:6, symbol MSFT: duplicate ts 2020-01-02T14:31:00Z: same timestamp as row 4 "
        "for this symbol (1 row with this problem)"
    )


def test_same_timestamp_across_symbols_is_fine() -> None:
    df = bars(3, ("AAPL", "MSFT", "IBM"))
    assert validate_bars(df, "bars").height == 9


def test_first_offending_row_wins_across_problems() -> None:
    df = set_value(bars(8), [6], "volume", -5.0)
    df = set_value(df, [2], "close", math.nan)
    assert str(refusal(df)) == "bars:3, symbol AAPL: close is NaN (1 row with this problem)"


def test_row_with_several_problems_reports_the_first_in_check_order() -> None:
    df = set_value(bars(4), [1], "volume", -1.0)
    df = set_value(df, [1], "high", math.nan)
    assert str(refusal(df)) == "bars:2, symbol AAPL: high is NaN (1 row with this problem)"


def test_first_row_is_found_in_large_frames() -> None:
    n = 300_000
    df = pl.DataFrame(
        {
            "ts": T0 + np.arange(n, dtype=np.int64) * MINUTE,
            "symbol": ["AAPL"] * n,
            "open": np.full(n, 100.0),
            "high": np.full(n, 101.0),
            "low": np.full(n, 99.0),
            "close": np.full(n, 100.0),
            "volume": np.full(n, 10.0),
        },
        schema=BAR_SCHEMA,
    )
    df = set_value(df, [250_000, 120_000, 11], "volume", -1.0)
    assert refusal(df).row == 12
    flipped = df.with_columns(pl.col("volume").reverse())  # bad rows now 50_000, 180_000, ...
    err = refusal(flipped)
    assert (err.row, str(err).endswith("(3 rows with this problem)")) == (50_000, True)


def test_first_row_offset_is_applied() -> None:
    df = set_value(bars(6), [0], "volume", -3.0)
    err = refusal(df, "bars.csv", first_row=2)
    assert err.row == 2
    assert str(err).startswith("bars.csv:2, symbol AAPL: volume -3.0 is negative")


def test_output_is_sorted_by_ts_then_symbol_without_helper_columns() -> None:
    df = bars(5, ("MSFT", "AAPL"))
    symbol_major = df.sort(["symbol", "ts"], descending=[True, False])
    out = validate_bars(symbol_major, "bars")
    assert out.columns == list(BAR_SCHEMA.names())
    assert out.equals(df.sort(["ts", "symbol"]))
    assert out["symbol"].to_list()[:4] == ["AAPL", "MSFT", "AAPL", "MSFT"]


def test_wrong_schema_is_refused_with_a_hint() -> None:
    df = bars(3).with_columns(pl.col("volume").cast(pl.Int64))
    err = refusal(df, "frame")
    assert "run normalize_bars first" in str(err)
    assert "volume: Int64" in str(err)


def test_empty_frame_is_refused() -> None:
    assert str(refusal(bars(3).head(0), "bars.parquet")) == "bars.parquet: no bars"


def test_missing_symbol_value_is_refused() -> None:
    df = bars(3, ("AAPL", "MSFT")).with_columns(
        symbol=pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("")).otherwise("symbol")
    )
    assert str(refusal(df)) == "bars:5: symbol is missing (1 row with this problem)"
