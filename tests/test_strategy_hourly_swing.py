"""Hourly Swing (seed 003) on hand-made hourly bars: RSI hysteresis with 60/40 bands.

Closes 100, 101, 102, 101, 100, 101 give an RSI 2 of -, -, 100, 50, 25, 62.5 (see
test_strategy_daily_trend_hysteresis.py for the arithmetic).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from kit import START_NS, bars

from backstop import Backtest
from backstop.cli import main
from backstop.data import sample_bars
from backstop.strategies import get_strategy

HOUR = 3_600_000_000_000
CLOSES = [100.0, 101.0, 102.0, 101.0, 100.0, 101.0, 101.0]
ROWS = [(c, c + 0.25, c - 0.25, c) for c in CLOSES]


def _hourly() -> pl.DataFrame:
    return bars(ROWS, start_ns=START_NS, step_ns=HOUR)


def test_enters_above_60_and_exits_below_40() -> None:
    """seed 003: Hourly Swing trades the same hysteresis as Daily Trend on hourly bars, with
    the team's 60/40 bands: 62.5 at bar 5 re-enters; with 65/40 it does not."""
    strategy = get_strategy("hourly_swing")
    table = strategy.intents(_hourly(), {"rsi_period": 2})
    assert table.select("bar", "side", "intent").rows() == [(2, 1, 0), (4, -1, 1), (5, 1, 0)]
    narrow = strategy.intents(_hourly(), {"rsi_period": 2, "upper": 65})
    assert narrow.select("bar", "intent").rows() == [(2, 0), (4, 1)]


def test_market_orders_fill_at_the_next_hourly_open() -> None:
    """seed 003: market orders (the recommended order type), the next bar's open."""
    result = Backtest(_hourly(), "hourly_swing", rsi_period=2, qty=10).run()
    fills = result.fills_ns.sort("ts").select("ts", "side", "price").rows()
    assert fills == [
        (START_NS + 3 * HOUR, "BUY", 101.0),
        (START_NS + 5 * HOUR, "SELL", 101.0),
        (START_NS + 6 * HOUR, "BUY", 101.0),
    ]


def test_its_swing_trades_are_held_through_a_profile_end_of_day_close() -> None:
    """seed 003's swing strategies hold overnight; seed 002's EOD close is for day trades.
    With the close 60 minutes before 16:00 the 15:30 bar is past it: the entry of bar 5
    (filled at that bar's open) is a swing trade and stays; the same rows as day trades are
    closed there by the engine."""
    from backstop.brokers.sim.backtest import run_backtest
    from backstop.engine.profile import RiskProfile

    profile = RiskProfile().with_settings({"exits.eod_minutes_before_close": 60.0})
    table = get_strategy("hourly_swing").intents(_hourly(), {"rsi_period": 2, "qty": 10})
    assert table.filter(pl.col("intent") == 0).get_column("trade_type").to_list() == [1, 1]
    swing = run_backtest(_hourly(), table, profile=profile)
    assert swing.verdicts.filter(pl.col("source") == "engine").is_empty()
    day = run_backtest(_hourly(), table.with_columns(trade_type=None), profile=profile)
    engine = day.verdicts_ns.filter(pl.col("source") == "engine")
    assert engine.select("ts", "reason_codes").rows() == [(START_NS + 6 * HOUR, ["EOD_CLOSE_EXIT"])]


def test_runs_from_the_cli_and_the_api_on_the_sample(tmp_path: Path, capsys) -> None:
    """seed 003 on the bundled sample (one-minute bars: the hysteresis on minutes)."""
    argv = ["backtest", "--strategy", "hourly_swing", "--profile", "equity-runner", "--json"]
    code = main([*argv, "--journal", str(tmp_path / "j"), "--force"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["verdicts_by_reason"] == {}
    api = Backtest(sample_bars(), "hourly_swing", profile="equity-runner").run()
    assert api.trades.height == out["round_trips"] > 0
