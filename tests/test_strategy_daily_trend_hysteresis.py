"""Daily Trend Hysteresis (seed 003) on hand-made daily bars: RSI bands, orders, sizing.

RSI 2 keeps the arithmetic short (Wilder's smoothing, alpha 1/2). Closes 100, 101, 102, 101,
100, 101: the average gain runs 1, 1, 0.5, 0.25, 0.625 and the average loss 0, 0, 0.5, 0.75,
0.375 from the second bar, so the RSI is -, -, 100, 50, 25, 62.5: above 55 at bar 2 (enter),
in the dead zone at bar 3 (hold), below 45 at bar 4 (exit), above 55 at bar 5 (enter again).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from kit import bars

from backstop import Backtest, ConfigError
from backstop.cli import main
from backstop.data import sample_bars
from backstop.strategies import get_strategy

NY = ZoneInfo("America/New_York")
DATES = [datetime(2024, 1, d, tzinfo=NY) for d in (2, 3, 4, 5, 8, 9, 10)]
TS = [int(d.timestamp()) * 1_000_000_000 for d in DATES]  # daily bars: 00:00 New York
CLOSES = [100.0, 101.0, 102.0, 101.0, 100.0, 101.0, 101.5]
OPENS = [100.0, 100.5, 101.2, 101.8, 100.6, 100.4, 101.1]
ROWS = [(o, max(o, c) + 0.5, min(o, c) - 0.5, c) for o, c in zip(OPENS, CLOSES, strict=True)]
FAST = {"rsi_period": 2}


def _daily() -> pl.DataFrame:
    return bars(ROWS, ts=TS)


def test_enters_above_the_upper_band_holds_in_the_dead_zone_and_exits_below_the_lower() -> None:
    """seed 003: Daily Trend Hysteresis (RSI with 55/45 bands: the team's documented signal)
    buys above 55, sells below 45, and does nothing in between."""
    table = get_strategy("daily_trend_hysteresis").intents(_daily(), FAST)
    assert table.select("bar", "side", "intent", "otype", "exit_reason").rows() == [
        (2, 1, 0, 0, 3),
        (4, -1, 1, 0, 3),
        (5, 1, 0, 0, 3),
    ]
    assert table.filter(pl.col("intent") == 0)["stop_px"].null_count() == 2  # no bracket


def test_the_daily_close_signal_fills_at_the_next_sessions_open() -> None:
    """seed 003: the 16:05 ET signal is executed at the next 09:30 ET open: a signal formed at
    day D's close fills at D+1's open, sized at 10% of equity by the equity-runner profile."""
    result = Backtest(_daily(), "daily_trend_hysteresis", profile="equity-runner", **FAST).run()
    fills = result.fills.sort("ts").select("ts", "side", "qty", "price").rows()
    assert fills == [
        (TS[3], "BUY", float(int(10_000 // 102.0)), OPENS[3]),  # 10% of 100,000 at close 102
        (TS[5], "SELL", 98.0, OPENS[5]),
        (TS[6], "BUY", pytest.approx(int(0.1 * result.equity["equity"][5] // 101.0)), OPENS[6]),
    ]
    assert result.summary()["verdicts_by_reason"] == {}


def test_bands_must_leave_a_dead_zone() -> None:
    """seed 003's hysteresis needs its exit band below its entry band."""
    with pytest.raises(ConfigError, match=r"lower: must be below upper \(60.0 >= 55"):
        get_strategy("daily_trend_hysteresis").resolve({"lower": 60})


def test_runs_from_the_cli_and_the_api_on_the_sample_with_the_equity_runner_profile(
    tmp_path: Path, capsys
) -> None:
    """seed 003 on the bundled sample: every signal became an order, none refused."""
    argv = ["backtest", "--strategy", "daily_trend_hysteresis", "--profile", "equity-runner"]
    code = main([*argv, "--json", "--journal", str(tmp_path / "j"), "--force"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["verdicts_by_reason"] == {}
    assert out["order_share"]["daily_trend_hysteresis"]["share"] == 1.0
    assert out["round_trips"] > 0
    api = Backtest(sample_bars(), "daily_trend_hysteresis", profile="equity-runner").run()
    assert api.trades.height == out["round_trips"]
