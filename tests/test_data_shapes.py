"""Bars as people have them (Yahoo / backtesting.py CSVs, pandas DatetimeIndex frames, globs):
loaded with no conversion by hand, every assumption stated, the ambiguous refused."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import polars as pl
import pytest

from backstop import Backtest, ConfigError, DataError
from backstop.cli import main
from backstop.runners.bars_in import load_data, load_frame

N = 120
FIRST = date(2020, 1, 2)
KEYS = ("signals", "orders", "round_trips", "pnl", "verdicts_by_reason", "fills")
GIVEN_UTC = "UTC (the times carry their zone)"


def _closes(n: int = N, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.02, n))), 2)


def _days(n: int = N) -> list[date]:
    return [FIRST + timedelta(days=i) for i in range(n)]


def write_goog(path: Path, *, yahoo: bool = False, seed: int = 7) -> Path:
    """A daily CSV shaped as backtesting.py's GOOG.csv (unnamed first column) or Yahoo's
    (``Date`` and an ``Adj Close`` that differs from the close)."""
    close = _closes(seed=seed)
    head = "Date,Open,High,Low,Close,Adj Close,Volume" if yahoo else ",Open,High,Low,Close,Volume"
    lines = [head]
    for day, c in zip(_days(), close, strict=True):
        o = round(c * 0.995, 2)
        adj = f",{round(c * 0.5, 2)}" if yahoo else ""
        lines.append(f"{day},{o},{round(c * 1.01, 2)},{round(c * 0.98, 2)},{c}{adj},1000000")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_canonical(path: Path, symbol: str, seed: int = 7) -> Path:
    """The same bars in backstop's own layout, times written with their offset."""
    close = _closes(seed=seed)
    lines = ["ts,symbol,open,high,low,close,volume"]
    for day, c in zip(_days(), close, strict=True):
        o = round(c * 0.995, 2)
        lines.append(
            f"{day}T00:00:00Z,{symbol},{o},{round(c * 1.01, 2)},{round(c * 0.98, 2)},{c},1000000"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def _midnight_ns(day: date, tz: str = "UTC") -> int:
    wall = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
    return int(wall.astimezone(UTC).timestamp()) * 10**9


def _json(tmp_path: Path, capsys, *argv: str) -> dict[str, Any]:
    code = main(["backtest", *argv, "--json", "--journal", str(tmp_path / "j"), "--force"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def _refusal(tmp_path: Path, capsys, *argv: str) -> str:
    code = main(["backtest", *argv, "--journal", str(tmp_path / "j")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    return err[0]


FAST_SLOW = ("--param", "fast=5", "--param", "slow=20")


# ---- the two promises of the issue --------------------------------------------------------
def test_cli_runs_a_backtesting_py_goog_csv_with_symbol(tmp_path: Path, capsys) -> None:
    goog = write_goog(tmp_path / "GOOG.csv")
    canon = write_canonical(tmp_path / "canon.csv", "GOOG")
    out = _json(tmp_path, capsys, "--data", str(goog), "--symbol", "GOOG", *FAST_SLOW)
    ref = _json(tmp_path, capsys, "--data", str(canon), *FAST_SLOW)
    assert out["bars"] == N and out["symbols"] == 1
    assert out["symbol"] == "GOOG (given: --symbol)"
    assert out["timezone"] == (
        "UTC (assumed: the times have no zone; no exchange known for GOOG; set --tz)"
    )
    assert out["data_notes"] == ["daily bars of GOOG.csv: each date stamped 00:00 UTC"]
    assert ref["timezone"] == GIVEN_UTC and ref["data_notes"] == []
    assert ref["round_trips"] > 0
    assert {k: out[k] for k in KEYS} == {k: ref[k] for k in KEYS}


def test_python_api_runs_pandas_read_csv_of_goog(tmp_path: Path, capsys) -> None:
    goog = write_goog(tmp_path / "GOOG.csv")
    frame = pd.read_csv(goog, index_col=0, parse_dates=True)
    bt = Backtest(frame, "sma_cross", fast=5, slow=20)
    result = bt.run()
    assert bt.bars["ts"].to_list() == [_midnight_ns(d) for d in _days()]
    assert bt.bars["symbol"].unique().to_list() == ["ASSET"]
    assert result.data_info == {
        "symbol": "ASSET (assumed: the frame has no symbol column; pass symbol=...)",
        "timezone": "UTC (assumed: the times have no zone; no exchange known for ASSET; set tz)",
        "data_notes": ["daily bars of the frame: each date stamped 00:00 UTC"],
    }
    cli = _json(tmp_path, capsys, "--data", str(goog), "--symbol", "ASSET", *FAST_SLOW)
    assert result.summary()["pnl"] == cli["pnl"] and result.round_trips == cli["round_trips"]
    assert "symbol ASSET (assumed" in repr(result).splitlines()[2]


def test_python_api_symbol_and_tz(tmp_path: Path) -> None:
    frame = pd.read_csv(write_goog(tmp_path / "GOOG.csv"), index_col=0, parse_dates=True)
    bt = Backtest(frame, "sma_cross", symbol="GOOG", tz="America/New_York", fast=5, slow=20)
    assert bt.bars["symbol"].unique().to_list() == ["GOOG"]
    assert bt.bars["ts"][0] == _midnight_ns(FIRST, "America/New_York")
    assert bt.data_info.symbol == "GOOG (given: symbol)"
    assert bt.data_info.timezone == "America/New_York (given: tz; the times have no zone)"


# ---- names people use -----------------------------------------------------------------------
def test_yahoo_csv_takes_the_stem_and_leaves_adj_close_out(tmp_path: Path, capsys) -> None:
    yahoo = write_goog(tmp_path / "GOOG.csv", yahoo=True)
    canon = write_canonical(tmp_path / "canon.csv", "GOOG")
    out = _json(tmp_path, capsys, "--data", str(yahoo), *FAST_SLOW)
    ref = _json(tmp_path, capsys, "--data", str(canon), *FAST_SLOW)
    assert out["symbol"] == "GOOG (from the file name: GOOG.csv has no symbol column)"
    assert out["data_notes"][0] == (
        "column 'Adj Close' left out: close is the traded close, not the dividend- and "
        "split-adjusted one"
    )
    assert {k: out[k] for k in KEYS} == {k: ref[k] for k in KEYS}


def test_summary_table_states_symbol_and_timezone(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    goog = write_goog(tmp_path / "GOOG.csv")
    code = main(["backtest", "--data", str(goog), *FAST_SLOW, "--journal", str(tmp_path / "j")])
    out = capsys.readouterr().out
    assert code == 0
    assert "GOOG (from the file name: GOOG.csv has no symbol column)" in out
    assert "UTC (assumed: the times have no zone; no exchange known for GOOG; set --tz)" in out


@pytest.mark.parametrize("name", ["Date", "Datetime", "Timestamp", "time", "timestamp", "TS"])
def test_time_column_aliases(name: str) -> None:
    frame = pl.DataFrame(
        {
            name: ["2020-01-02T14:30:00Z", "2020-01-02T14:31:00Z"],
            "OPEN": [1.0, 1.0],
            "High": [2.0, 2.0],
            "low": [0.5, 0.5],
            "Close": [1.5, 1.5],
            "VOLUME": [10, 10],
        }
    )
    bars, info = load_frame(frame, symbol="X")
    assert bars.columns == ["ts", "symbol", "open", "high", "low", "close", "volume"]
    assert bars["ts"][0] == _midnight_ns(date(2020, 1, 2)) + (14 * 60 + 30) * 60 * 10**9
    assert info.timezone == GIVEN_UTC


def test_pandas_index_column_beside_a_date_column_is_dropped(tmp_path: Path) -> None:
    frame = pd.read_csv(write_goog(tmp_path / "GOOG.csv", yahoo=True))  # RangeIndex
    frame.to_csv(tmp_path / "IDX.csv")  # writes ",Date,Open,..." with 0, 1, 2 in front
    bars, _ = load_data(tmp_path / "IDX.csv")
    assert bars["ts"][0] == _midnight_ns(FIRST) and bars["symbol"][0] == "IDX"


def test_unnamed_row_numbers_are_not_times(tmp_path: Path, capsys) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(",Open,High,Low,Close,Volume\n0,1,2,0.5,1.5,10\n1,1,2,0.5,1.5,10\n")
    line = _refusal(tmp_path, capsys, "--data", str(path))
    assert line == (
        f"backstop: error: {path}, column ts: missing (columns present: , open, high, low, "
        "close, volume, symbol)"
    )


def test_parquet_written_by_pandas_from_a_datetime_index(tmp_path: Path, capsys) -> None:
    """``pd.read_csv(..., index_col=0, parse_dates=True).to_parquet(...)`` stores the unnamed
    DatetimeIndex as its last column, ``__index_level_0__``: it is the time."""
    frame = pd.read_csv(write_goog(tmp_path / "GOOG.csv"), index_col=0, parse_dates=True)
    frame.to_parquet(tmp_path / "GOOG.parquet")
    assert pl.read_parquet(tmp_path / "GOOG.parquet").columns[-1] == "__index_level_0__"
    out = _json(tmp_path, capsys, "--data", str(tmp_path / "GOOG.parquet"), *FAST_SLOW)
    ref = _json(tmp_path, capsys, "--data", str(tmp_path / "GOOG.csv"), *FAST_SLOW)
    assert out["bars"] == N and out["symbol"].startswith("GOOG (from the file name")
    assert {k: out[k] for k in KEYS} == {k: ref[k] for k in KEYS}
    assert ref["round_trips"] > 0


def test_parquet_with_date_type_and_no_symbol(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "date": _days(3),
            "open": [1.0] * 3,
            "high": [2.0] * 3,
            "low": [0.5] * 3,
            "close": [1.5] * 3,
            "volume": [5.0] * 3,
        }
    )
    frame.write_parquet(tmp_path / "SPY.parquet")
    bars, info = load_data(tmp_path / "SPY.parquet", tz="America/New_York")
    assert bars["ts"].to_list() == [_midnight_ns(d, "America/New_York") for d in _days(3)]
    assert info.symbol == "SPY (from the file name: SPY.parquet has no symbol column)"
    assert info.notes == ("daily bars of SPY.parquet: each date stamped 00:00 America/New_York",)


def test_registered_future_defaults_to_chicago(tmp_path: Path, capsys) -> None:
    path = tmp_path / "ES.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-01-02 08:30:00,4800,4801,4799,4800.5,10\n"
        "2024-01-02 08:31:00,4800.5,4802,4800,4801,12\n"
    )
    bars, info = load_data(path)
    assert bars["ts"][0] == int(datetime(2024, 1, 2, 14, 30, tzinfo=UTC).timestamp()) * 10**9
    assert info.timezone == (
        "America/Chicago (assumed: the times have no zone; the exchange of ES; set tz)"
    )


def test_a_panel_of_a_future_and_an_equity_is_read_in_utc(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        "Date,Symbol,Open,High,Low,Close,Volume\n"
        "2024-01-02,ES,4800,4801,4799,4800.5,10\n2024-01-02,GOOG,140,141,139,140.5,10\n"
    )
    bars, info = load_data(path)
    assert bars["ts"].to_list() == [_midnight_ns(date(2024, 1, 2))] * 2
    assert info.symbol == "from the symbol column of mixed.csv"
    assert info.timezone == (
        "UTC (assumed: the times have no zone; no exchange known for GOOG; set tz)"
    )


def test_prepared_bars_take_no_symbol() -> None:
    from backstop.data import sample_bars

    bt = Backtest(sample_bars())
    with pytest.raises(ConfigError) as info:
        Backtest(bt.prepared, symbol="X")
    assert str(info.value) == "symbol: applies to bars to load, not to bars already prepared"


def test_tz_unused_when_times_carry_their_zone(tmp_path: Path) -> None:
    canon = write_canonical(tmp_path / "canon.csv", "GOOG")
    _, info = load_data(canon, tz="Asia/Tokyo", names=("--symbol", "--tz"))
    assert info.timezone == GIVEN_UTC
    assert info.notes == ("--tz Asia/Tokyo not used: the times of canon.csv carry their zone",)


# ---- several files --------------------------------------------------------------------------
def test_glob_loads_one_panel_named_by_stems(tmp_path: Path, capsys) -> None:
    (tmp_path / "data").mkdir()
    write_goog(tmp_path / "data" / "AAA.csv", seed=1)
    write_goog(tmp_path / "data" / "BBB.csv", yahoo=True, seed=2)
    out = _json(tmp_path, capsys, "--data", str(tmp_path / "data" / "*.csv"), *FAST_SLOW)
    assert out["bars"] == 2 * N and out["symbols"] == 2
    assert out["symbol"] == (
        "AAA (from the file name: AAA.csv has no symbol column); "
        "BBB (from the file name: BBB.csv has no symbol column)"
    )
    assert (
        out["timezone"].startswith("AAA.csv: UTC (assumed") and "; BBB.csv: UTC" in out["timezone"]
    )


def test_python_list_of_files_is_one_panel(tmp_path: Path) -> None:
    a = write_goog(tmp_path / "AAA.csv", seed=1)
    b = write_canonical(tmp_path / "other.csv", "BBB", seed=2)
    bt = Backtest([a, str(b)], "sma_cross", fast=5, slow=20)
    assert bt.bars.height == 2 * N
    assert bt.bars["symbol"].head(2).to_list() == ["AAA", "BBB"]  # (ts, symbol) order
    assert bt.data_info.symbol == (
        "AAA (from the file name: AAA.csv has no symbol column); "
        "from the symbol column of other.csv"
    )


def test_glob_matching_nothing_is_refused(tmp_path: Path, capsys) -> None:
    pattern = str(tmp_path / "nope" / "*.csv")
    line = _refusal(tmp_path, capsys, "--data", pattern)
    assert line == f"backstop: error: {pattern}: the pattern matches no file"


def test_bar_in_two_files_is_refused_naming_both(tmp_path: Path, capsys) -> None:
    a = write_goog(tmp_path / "GOOG.csv")
    b = write_canonical(tmp_path / "more.csv", "GOOG")
    with pytest.raises(DataError) as info:
        load_data([a, b])
    assert str(info.value) == (
        f"{a}, symbol GOOG: the bar at 2020-01-02T00:00:00Z is in both {a} and {b} "
        f"({N} bars are in more than one file): load each bar once"
    )


def test_symbol_with_several_files_is_refused(tmp_path: Path, capsys) -> None:
    write_goog(tmp_path / "AAA.csv")
    write_goog(tmp_path / "BBB.csv")
    line = _refusal(tmp_path, capsys, "--data", str(tmp_path / "*.csv"), "--symbol", "X")
    assert line == (
        "backstop: error: --symbol: names one symbol, but the data is 2 files: each file's "
        "symbol comes from its symbol column or its name"
    )


# ---- refusals -------------------------------------------------------------------------------
def test_two_time_columns_are_refused(tmp_path: Path, capsys) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "Date,Timestamp,Open,High,Low,Close,Volume\n2020-01-02,2020-01-02,1,2,0.5,1.5,10\n"
    )
    line = _refusal(tmp_path, capsys, "--data", str(path))
    assert line == (
        f"backstop: error: {path}, column ts: columns 'Date' and 'Timestamp' both name ts: "
        "which one is meant would be a guess; drop or rename one (if one is the date and the "
        "other the time of day, join them into one column)"
    )


def test_two_close_columns_are_refused(tmp_path: Path, capsys) -> None:
    path = tmp_path / "t.csv"
    path.write_text("Date,Open,High,Low,Close,close,Volume\n2020-01-02,1,2,0.5,1.5,1.4,10\n")
    line = _refusal(tmp_path, capsys, "--data", str(path))
    assert line == (
        f"backstop: error: {path}, column close: columns 'Close' and 'close' both name close: "
        "which one is meant would be a guess; drop or rename one"
    )


def test_missing_volume_is_refused_saying_why(tmp_path: Path, capsys) -> None:
    path = tmp_path / "t.csv"
    path.write_text("Date,Open,High,Low,Close\n2020-01-02,1,2,0.5,1.5\n")
    line = _refusal(tmp_path, capsys, "--data", str(path))
    assert line == (
        f"backstop: error: {path}, column volume: missing; backstop needs each bar's volume "
        "(the max_participation cap reads it) and does not invent one (columns present: "
        "ts, open, high, low, close, symbol)"
    )


def test_datetime_index_beside_a_date_column_is_refused() -> None:
    frame = pd.DataFrame(
        {"Date": ["2020-01-02"], "Open": [1.0], "High": [2.0], "Low": [0.5], "Close": [1.5]},
        index=pd.DatetimeIndex(["2020-01-02"]),
    )
    with pytest.raises(DataError) as info:
        Backtest(frame)
    assert str(info.value) == (
        "bars, column ts: the frame has a DatetimeIndex and a time column 'Date': which one "
        "is the time would be a guess (drop the column, or reset_index() the frame)"
    )


def test_symbol_next_to_a_symbol_column_of_others_is_refused(tmp_path: Path) -> None:
    canon = write_canonical(tmp_path / "canon.csv", "GOOG")
    with pytest.raises(ConfigError) as info:
        Backtest(canon, symbol="MSFT")
    assert str(info.value) == (
        f"symbol: 'MSFT' names the symbol of a source without a symbol column, but {canon} has "
        "one (holding GOOG): leave symbol out"
    )
    assert Backtest(canon, symbol="GOOG").bars.height == N  # the same symbol is no conflict


def test_unknown_tz_is_refused_even_when_unused(tmp_path: Path, capsys) -> None:
    canon = write_canonical(tmp_path / "canon.csv", "GOOG")
    line = _refusal(tmp_path, capsys, "--data", str(canon), "--tz", "Mars/Olympus")
    assert line == (
        "backstop: error: --tz: 'Mars/Olympus' is not an IANA time zone "
        "(e.g. 'UTC', 'America/New_York')"
    )


def test_sweep_reads_the_same_shapes(tmp_path: Path, capsys) -> None:
    import duckdb

    goog = write_goog(tmp_path / "GOOG.csv", yahoo=True)
    out = tmp_path / "s.duckdb"
    argv = ["sweep", "--data", str(goog), "--tz", "America/New_York", "--processes", "1"]
    code = main([*argv, "--param", "fast=5,8", "--param", "slow=20", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["combinations"] == 2
    con = duckdb.connect(str(out), read_only=True)
    try:
        symbol, zone = con.execute("SELECT symbol, timezone FROM meta").fetchone()
    finally:
        con.close()
    assert json.loads(symbol) == "GOOG (from the file name: GOOG.csv has no symbol column)"
    assert json.loads(zone) == "America/New_York (given: --tz; the times have no zone)"
