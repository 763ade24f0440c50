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
    fills = result.fills.sort("ts").select("ts", "side", "price").rows()
    assert fills == [
        (START_NS + 3 * HOUR, "BUY", 101.0),
        (START_NS + 5 * HOUR, "SELL", 101.0),
        (START_NS + 6 * HOUR, "BUY", 101.0),
    ]


def test_runs_from_the_cli_and_the_api_on_the_sample(tmp_path: Path, capsys) -> None:
    """seed 003 on the bundled sample (one-minute bars: the hysteresis on minutes)."""
    argv = ["backtest", "--strategy", "hourly_swing", "--profile", "equity-runner", "--json"]
    code = main([*argv, "--journal", str(tmp_path / "j"), "--force"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["verdicts_by_reason"] == {}
    api = Backtest(sample_bars(), "hourly_swing", profile="equity-runner").run()
    assert api.trades.height == out["round_trips"] > 0
