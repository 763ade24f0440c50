"""Loaders read CSV, Parquet, DuckDB and in-memory frames into validated ``BAR_SCHEMA`` bars."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest

from backstop.data import BAR_SCHEMA, gbm_bars, load_bars, load_bars_frame, normalize_bars
from backstop.errors import DataError

T0 = 1_577_975_400_000_000_000  # 2020-01-02T14:30:00Z == 09:30 America/New_York
MINUTE = 60_000_000_000
HEADER = "ts,symbol,open,high,low,close,volume"


def csv_line(i: int, symbol: str = "AAPL", ohlc: tuple[float, ...] = (100, 101, 99, 100)) -> str:
    """Write one CSV bar ``i`` minutes after T0 (valid unless ``ohlc`` breaks it)."""
    return f"{T0 + i * MINUTE},{symbol},{','.join(map(str, ohlc))},1000"


def write(path: Path, lines: list[str]) -> Path:
    """Write text lines to ``path`` and return it."""
    path.write_text("\n".join(lines) + "\n")
    return path


def frame(ts: list[object], **columns: object) -> pl.DataFrame:
    """Build a bar frame around a ``ts`` column of any type, with valid constant prices."""
    n = len(ts)
    base = {"symbol": ["AAPL"] * n, "open": [100.0] * n, "high": [101.0] * n}
    base |= {"low": [99.0] * n, "close": [100.0] * n, "volume": [10.0] * n}
    return pl.DataFrame({"ts": ts, **base, **columns})


# --- CSV --------------------------------------------------------------------------------------


def test_csv_loads_to_bar_schema(tmp_path: Path) -> None:
    path = write(tmp_path / "bars.csv", [HEADER, csv_line(1, "MSFT"), csv_line(0), csv_line(1)])
    out = load_bars(path)
    assert out.schema == BAR_SCHEMA
    assert out.select("ts", "symbol").rows() == [
        (T0, "AAPL"),
        (T0 + MINUTE, "AAPL"),
        (T0 + MINUTE, "MSFT"),
    ]
    assert out["volume"].to_list() == [1000.0, 1000.0, 1000.0]


def test_csv_error_gives_the_file_line(tmp_path: Path) -> None:
    lines = [HEADER] + [csv_line(i) for i in range(20)]
    for line_no in (14, 17, 19):  # line 1 is the header, so line n holds bar n - 2
        lines[line_no - 1] = csv_line(line_no - 2, ohlc=(99.8, 99.5, 100.2, 99.8))
    path = write(tmp_path / "bars.csv", lines)
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value) == (
        f"{path}:14, symbol AAPL: high 99.5 < low 100.2 (3 rows with this problem)"
    )
    assert info.value.row == 14


def test_csv_bad_number_names_its_line(tmp_path: Path) -> None:
    lines = [HEADER] + [csv_line(i) for i in range(150)]
    lines.append(f"{T0 + 150 * MINUTE},AAPL,abc,101.0,99.0,100.0,1000")
    path = write(tmp_path / "bars.csv", lines)
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value) == (
        f"{path}:152, symbol AAPL, column open: 'abc' is not a number (1 row with this problem)"
    )


def test_csv_without_symbol_column_takes_symbol_argument(tmp_path: Path) -> None:
    lines = ["ts,open,high,low,close,volume", f"{T0},1.0,2.0,0.5,1.5,10"]
    path = write(tmp_path / "es.csv", lines)
    assert load_bars(path, symbol="ES")["symbol"].to_list() == ["ES"]
    with pytest.raises(DataError, match=r"column symbol: missing: pass symbol="):
        load_bars(path)


def test_csv_iso_timestamps_with_offset(tmp_path: Path) -> None:
    lines = [
        HEADER,
        "2020-01-02T09:30:00-05:00,AAPL,100,101,99,100,5",
        "2020-01-02T14:31:00Z,AAPL,100,101,99,100,5",
        "2020-01-02 15:32:00.5+01:00,AAPL,100,101,99,100,5",
    ]
    out = load_bars(write(tmp_path / "iso.csv", lines))
    assert out["ts"].to_list() == [T0, T0 + MINUTE, T0 + 2 * MINUTE + 500_000_000]


def test_csv_naive_iso_timestamp_is_refused_with_its_line(tmp_path: Path) -> None:
    lines = [
        HEADER,
        "2020-01-02T09:30:00-05:00,AAPL,100,101,99,100,5",
        "2020-01-02T09:31:00,AAPL,100,101,99,100,5",
        "2020-01-02T09:32:00,AAPL,100,101,99,100,5",
    ]
    path = write(tmp_path / "naive.csv", lines)
    with pytest.raises(DataError) as info:
        load_bars(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3, symbol AAPL, column ts: '2020-01-02T09:31:00' has no")
    assert "pass naive_tz" in message
    assert message.endswith("(2 rows with this problem)")


def test_csv_naive_iso_timestamps_with_naive_tz(tmp_path: Path) -> None:
    lines = [HEADER, "2020-01-02 09:30:00,AAPL,100,101,99,100,5"]
    out = load_bars(write(tmp_path / "ny.csv", lines), naive_tz="America/New_York")
    assert out["ts"].to_list() == [T0]


# --- Parquet and DuckDB -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bars.parquet", "bars.pq", "BARS.PARQUET"])
def test_parquet_round_trip(tmp_path: Path, name: str) -> None:
    bars = gbm_bars(50, 2, seed=3)
    bars.write_parquet(tmp_path / name)
    assert load_bars(tmp_path / name).equals(bars)


def test_parquet_extra_columns_are_dropped(tmp_path: Path) -> None:
    bars = gbm_bars(10, 1, seed=3)
    bars.with_columns(vwap=pl.col("close"), note=pl.lit("x")).write_parquet(tmp_path / "b.parquet")
    assert load_bars(tmp_path / "b.parquet").equals(bars)


def test_parquet_missing_column_names_column_and_path(tmp_path: Path) -> None:
    gbm_bars(10, 1).drop("low").write_parquet(tmp_path / "b.parquet")
    with pytest.raises(DataError) as info:
        load_bars(tmp_path / "b.parquet")
    assert info.value.column == "low"
    assert str(info.value).startswith(f"{tmp_path / 'b.parquet'}, column low: missing")


@pytest.mark.parametrize("ext", [".duckdb", ".db"])
def test_duckdb_table(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"bars{ext}"
    bars = gbm_bars(40, ["SPY", "QQQ"], seed=9)
    with duckdb.connect(str(path)) as con:
        con.register("src", bars.to_arrow())
        con.execute("CREATE TABLE minute_bars AS SELECT * FROM src")
    assert load_bars(path, table="minute_bars").equals(bars)


def test_duckdb_timestamptz_column(tmp_path: Path) -> None:
    path = tmp_path / "tz.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE bars AS SELECT TIMESTAMPTZ '2020-01-02 09:30:00-05:00' AS ts, "
            "'AAPL' AS symbol, 100.0 AS open, 101.0 AS high, 99.0 AS low, 100.0 AS close, "
            "10 AS volume"
        )
    out = load_bars(path)
    assert out.rows() == [(T0, "AAPL", 100.0, 101.0, 99.0, 100.0, 10.0)]


def test_duckdb_error_names_file_and_table(tmp_path: Path) -> None:
    path = tmp_path / "bad.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            f"CREATE TABLE bars AS SELECT {T0} + i * {MINUTE} AS ts, 'AAPL' AS symbol, "
            "100.0 AS open, 101.0 AS high, 99.0 AS low, 100.0 AS close, "
            "CASE WHEN i = 3 THEN -1 ELSE 5 END AS volume FROM range(6) t(i)"
        )
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value) == (
        f"{path}[bars]:4, symbol AAPL: volume -1.0 is negative (1 row with this problem)"
    )


def test_duckdb_missing_table(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(DataError, match=r"empty\.duckdb\[bars\]: cannot read table"):
        load_bars(path)


@pytest.mark.parametrize("table", ["bars; DROP TABLE bars", "main.bars", '"bars"', "1bars", ""])
def test_duckdb_table_must_be_a_plain_identifier(tmp_path: Path, table: str) -> None:
    path = tmp_path / "x.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(DataError, match="is not a plain identifier"):
        load_bars(path, table=table)


# --- bad paths --------------------------------------------------------------------------------


def test_unknown_extension(tmp_path: Path) -> None:
    path = write(tmp_path / "bars.txt", [HEADER])
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value).startswith(f"{path}: unknown file type '.txt'")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.parquet"
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value) == f"{path}: file not found"
    assert info.value.source == str(path)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataError, match=r"dir\.csv: not a file"):
        load_bars(tmp_path / "dir.csv")


@pytest.mark.parametrize("name", ["junk.parquet", "junk.duckdb"])
def test_unreadable_file_names_the_path(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"not a real file " * 64)
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value).startswith(str(path))
    assert "cannot" in str(info.value)


def test_empty_csv(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value) == f"{path}: empty file"


def test_csv_with_header_only_has_no_bars(tmp_path: Path) -> None:
    path = write(tmp_path / "header.csv", [HEADER])
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value) == f"{path}: no bars"


# --- in-memory frames and time zones ----------------------------------------------------------


def test_pandas_frame_with_tz_aware_index() -> None:
    index = pd.DatetimeIndex(
        ["2020-01-02 09:31", "2020-01-02 09:30"], tz="America/New_York", name="ts"
    )
    pdf = pd.DataFrame(
        {
            "symbol": ["AAPL", "AAPL"],
            "open": [1.0, 1.0],
            "high": [2.0, 2.0],
            "low": [0.5, 0.5],
            "close": [1.5, 1.5],
            "volume": [7, 8],
        },
        index=index,
    )
    with pytest.raises(DataError, match="timestamps not sorted"):
        load_bars_frame(pdf)
    out = load_bars_frame(pdf.sort_index(), source="pdf")
    assert out["ts"].to_list() == [T0, T0 + MINUTE]
    assert out["volume"].to_list() == [8.0, 7.0]


def test_pandas_nan_is_reported_as_nan_not_missing() -> None:
    pdf = pd.DataFrame(
        {
            "ts": [T0, T0 + MINUTE],
            "symbol": ["AAPL", "AAPL"],
            "open": [1.0, 1.0],
            "high": [2.0, 2.0],
            "low": [0.5, 0.5],
            "close": [1.5, math.nan],
            "volume": [7.0, 8.0],
        }
    )
    with pytest.raises(DataError) as info:
        load_bars_frame(pdf)
    assert str(info.value) == "<frame>:2, symbol AAPL: close is NaN (1 row with this problem)"


def test_frame_of_another_type_is_refused() -> None:
    with pytest.raises(DataError, match="expected a polars or pandas DataFrame, got list"):
        load_bars_frame([1, 2, 3])


def test_polars_lazy_frame_is_collected() -> None:
    bars = gbm_bars(5, 1)
    assert load_bars_frame(bars.lazy()).equals(bars)


def test_tz_aware_datetime_of_any_unit() -> None:
    local = pl.Series(["2020-01-02 15:30", "2020-01-02 15:31"]).str.to_datetime()
    for unit in ("ms", "us", "ns"):
        ts = local.dt.cast_time_unit(unit).dt.replace_time_zone("Europe/Berlin")
        out = load_bars_frame(frame(ts.to_list()).with_columns(ts=ts))
        assert out["ts"].to_list() == [T0, T0 + MINUTE]


def test_naive_datetime_is_refused_without_naive_tz() -> None:
    ts = pl.Series([T0], dtype=pl.Datetime("ns"))
    with pytest.raises(DataError) as info:
        load_bars_frame(frame(ts.to_list()))
    assert str(info.value).startswith("<frame>, column ts: timestamps have no time zone")
    assert "naive_tz='UTC'" in str(info.value)


def test_naive_datetime_with_naive_tz() -> None:
    ts = pl.Series(["2020-01-02 09:30"]).str.to_datetime()
    out = load_bars_frame(frame(ts.to_list()), naive_tz="America/New_York")
    assert out["ts"].to_list() == [T0]
    assert load_bars_frame(frame(ts.to_list()), naive_tz="UTC")["ts"].to_list() == [
        T0 - 5 * 60 * MINUTE
    ]


def test_naive_time_in_a_dst_gap_names_its_row() -> None:
    ts = pl.Series(["2020-03-08 01:59", "2020-03-08 02:30"]).str.to_datetime()
    with pytest.raises(DataError) as info:
        load_bars_frame(frame(ts.to_list()), naive_tz="America/New_York")
    assert str(info.value) == (
        "<frame>:2, symbol AAPL, column ts: 2020-03-08 02:30:00 is ambiguous or does not exist "
        "in America/New_York (a DST change) (1 row with this problem)"
    )


def test_unknown_naive_tz_is_refused() -> None:
    with pytest.raises(DataError, match="'Mars/Olympus' is not an IANA time zone"):
        load_bars_frame(frame([T0]), naive_tz="Mars/Olympus")


def test_text_that_is_no_timestamp_names_its_row() -> None:
    with pytest.raises(DataError) as info:
        load_bars_frame(frame(["2020-01-02T14:30:00Z", "yesterday"]))
    assert str(info.value) == (
        "<frame>:2, symbol AAPL, column ts: 'yesterday' is not an ISO-8601 timestamp "
        "(1 row with this problem)"
    )


def test_normalize_coerces_types_and_column_order() -> None:
    df = pl.DataFrame(
        {
            "volume": pl.Series([5, 6], dtype=pl.Int32),
            "close": [100, 101],
            "low": [99.0, 100.0],
            "high": pl.Series(["101.5", "102"]),
            "open": [100.0, 100.5],
            "symbol": pl.Series(["AAPL", "AAPL"], dtype=pl.Categorical),
            "ts": pl.Series([T0, T0 + MINUTE], dtype=pl.UInt64),
        }
    )
    out = normalize_bars(df, "frame")
    assert out.schema == BAR_SCHEMA
    assert out.rows() == [
        (T0, "AAPL", 100.0, 101.5, 99.0, 100.0, 5.0),
        (T0 + MINUTE, "AAPL", 100.5, 102.0, 100.0, 101.0, 6.0),
    ]


def test_normalize_keeps_row_order_and_count() -> None:
    ts = np.array([T0 + 2 * MINUTE, T0, T0 + MINUTE])
    out = normalize_bars(frame(list(ts)), "frame")
    assert out["ts"].to_list() == list(ts)
