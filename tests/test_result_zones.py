"""Result frames show times as zone-aware datetimes; kernels, stats and the journal keep ns."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from backstop import Backtest, sample_bars
from backstop.data import gbm_bars
from backstop.engine.journal import read_table, write_journal

FRAMES = {
    "trades": ("entry_ts", "exit_ts"),
    "orders": ("created_ts", "done_ts"),
    "fills": ("ts",),
    "verdicts": ("ts",),
    "equity": ("ts",),
    "guard_events": ("ts",),
}


@pytest.fixture(scope="module")
def small() -> pl.DataFrame:
    bars = sample_bars()
    return bars.filter(pl.col("ts") < bars["ts"].min() + 2 * 86_400 * 10**9)


def test_frames_show_utc_datetimes_of_the_same_instants(small: pl.DataFrame) -> None:
    r = Backtest(small, "sma_cross").run()
    assert r.zone == "UTC"
    for name, cols in FRAMES.items():
        shown, ns = getattr(r, name), getattr(r, f"{name}_ns")
        for col in cols:
            assert shown.schema[col] == pl.Datetime("ns", "UTC"), (name, col)
            assert ns.schema[col] == pl.Int64, (name, col)
            assert shown[col].dt.epoch("ns").to_list() == ns[col].to_list(), (name, col)
        assert shown.drop(cols).equals(ns.drop(cols))
    first = r.trades.row(0, named=True)
    assert first["entry_ts"].isoformat() == "2020-01-02T15:37:00+00:00"
    assert r.trades_ns["entry_ts"][0] == 1_577_979_420_000_000_000
    # an order still working at the end has no done time: null, not the epoch
    assert r.orders["done_ts"].null_count() == r.orders_ns["done_ts"].null_count()


def test_a_given_zone_is_the_zone_shown(small: pl.DataFrame) -> None:
    naive = small.with_columns(pl.from_epoch("ts", "ns"))  # UTC wall times, no zone
    r = Backtest(naive, "sma_cross", tz="America/New_York").run()
    assert r.zone == "America/New_York"
    assert r.trades.schema["entry_ts"] == pl.Datetime("ns", "America/New_York")
    # naive times read in New York show again as the same wall-clock times
    first = r.trades.row(0, named=True)["entry_ts"]
    assert (first.isoformat(), str(first.tzinfo)) == (
        "2020-01-02T15:37:00-05:00",
        "America/New_York",
    )
    best, _ = Backtest(naive, "sma_cross", tz="America/New_York").optimize(
        processes=1, fast=[10], slow=[30]
    )
    assert best.zone == "America/New_York"


def test_an_exchange_zone_of_the_instruments_is_the_zone_shown() -> None:
    bars = gbm_bars(3_000, ["ES"], seed=3)  # ts carries its zone: no tz to read it in
    r = Backtest(bars, "sma_cross").run()
    assert r.zone == "America/Chicago"
    assert r.equity.schema["ts"] == pl.Datetime("ns", "America/Chicago")
    mixed = gbm_bars(3_000, ["ES", "SPY"], seed=3)
    assert Backtest(mixed, "sma_cross").run().zone == "UTC"  # no one zone: UTC


def test_the_journal_and_the_stats_keep_int_ns(small: pl.DataFrame, tmp_path: Path) -> None:
    r = Backtest(small, "sma_cross", tz="America/New_York").run()
    path = write_journal(r, tmp_path / "journal.duckdb")
    for table, frame in (("trades", r.trades_ns), ("equity", r.equity_ns)):
        stored = read_table(path, table)
        for col in FRAMES[table]:
            assert stored.schema[col] == pl.Int64
            assert stored[col].to_list() == frame[col].to_list()
    assert r.stats["start_ts"] == r.equity_ns["ts"][0] == small["ts"][0]
    assert isinstance(r.stats["end_ts"], int)
