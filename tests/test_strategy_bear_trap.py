"""Bear Trap (seed 003) on hand-made one-minute bars: the crash, the reclaim, the managed trade.

The previous date closes at 100. The next session falls to a low of 84.0 by bar 2; bar 3
breaks it (low 83.8) and closes back above it at 84.7 (-15.3% on the day), in the top of its
range, on three times the volume: the trap is sprung. The session high so far is 86, so the
target is the middle of the range, (83.8 + 86) / 2 = 84.9, and the stop the new low, 83.8.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from kit import bars

from backstop import Backtest
from backstop.cli import main
from backstop.data import sample_bars
from backstop.domain.enums import OrderRole
from backstop.strategies import get_strategy

NY = ZoneInfo("America/New_York")
MINUTE = 60_000_000_000
PREVIOUS = [(100.0, 100.2, 99.8, 100.0, 1000.0)] * 3
CRASH = [
    (86.0, 86.0, 85.0, 85.5, 1000.0),
    (85.5, 85.6, 84.5, 84.8, 1000.0),
    (84.8, 85.0, 84.0, 84.2, 1000.0),
    (84.2, 84.9, 83.8, 84.7, 3000.0),  # bar 3 of the session: break, reclaim, volume
    (84.7, 84.85, 84.6, 84.8, 1000.0),
    (84.8, 84.88, 84.6, 84.85, 1000.0),
    (84.85, 84.88, 84.7, 84.8, 1000.0),
    (84.8, 84.85, 84.75, 84.8, 1000.0),
]
SMALL = {"vol_lookback": 3, "atr_period": 2}


def _stamps(session_start: datetime, n: int) -> list[int]:
    day1 = int(datetime(2024, 1, 2, 15, 57, tzinfo=NY).timestamp()) * 1_000_000_000
    start = int(session_start.timestamp()) * 1_000_000_000
    return [day1 + k * MINUTE for k in range(3)] + [start + k * MINUTE for k in range(n)]


def _bars(session: list[tuple], start: datetime | None = None) -> pl.DataFrame:
    start = start or datetime(2024, 1, 3, 9, 30, tzinfo=NY)
    return bars(PREVIOUS + session, ts=_stamps(start, len(session)))


def _intents(frame: pl.DataFrame, **params) -> pl.DataFrame:
    return get_strategy("bear_trap").intents(frame, SMALL | params)


def test_a_reclaimed_crash_low_is_a_market_entry_with_its_low_as_stop_and_mid_range_target() -> (
    None
):
    """seed 003: Bear Trap enters on -15% crashes (the reclaim of the broken session low)."""
    row = _intents(_bars(CRASH)).row(0, named=True)
    assert (row["bar"], row["side"], row["intent"], row["otype"]) == (3 + 3, 1, 0, 0)
    assert (row["stop_px"], row["target_px"]) == (83.8, None)  # targets: the scale-outs
    row = _intents(_bars(CRASH), scale_out=0).row(0, named=True)
    assert (row["stop_px"], row["target_px"]) == (83.8, pytest.approx(84.9, abs=1e-12))
    assert _intents(_bars(CRASH), crash_pct=0.16).is_empty()  # -15.3% is not -16%
    assert _intents(_bars(CRASH), vol_mult=3.5).is_empty()  # 3x the volume is not 3.5x
    assert _intents(_bars(CRASH), reclaim_frac=0.1).is_empty()  # close not in the top 10%


# after the reclaim (bar 3, close 84.7): bar 4 closes past the first target (84.9), bar 5 past
# the second (the session high, 86.0); the runner is then held until the time stop
SCALING = [
    *CRASH[:4],
    (84.7, 84.95, 84.65, 84.92, 1000.0),
    (84.95, 86.2, 84.9, 86.1, 1000.0),
    (86.05, 86.3, 86.0, 86.2, 1000.0),
    (86.2, 86.3, 86.1, 86.2, 1000.0),
    (86.2, 86.3, 86.1, 86.2, 1000.0),
    (86.25, 86.3, 86.2, 86.25, 1000.0),
]
RUNNER = {"max_hold_minutes": 5, "trail_atr": 10.0}  # a trailing stop far under the stop leg


def test_scale_out_40_30_30_bar_by_bar() -> None:
    """seed 003's active management, the team's staged exits: 40% at the first close past
    the middle of the range (bar 4: 84.92 >= 84.9), half of the rest (30%) at the first close
    past the session high (bar 5: 86.1 >= 86.0), the last 30% held until the time stop (5
    minutes after the fill at bar 4's open: bar 8's close). Each exit fills at the next
    open: 4 at 84.95, 3 at 86.05, 3 at 86.25; one trade at their average price."""
    table = _intents(_bars(SCALING), qty=10, **RUNNER)
    exits = table.filter(pl.col("intent") == 1)
    assert exits.select("bar", "exit_fraction", "exit_reason").rows() == [
        (3 + 4, 0.4, int(OrderRole.SIGNAL_EXIT)),
        (3 + 5, 0.5, int(OrderRole.SIGNAL_EXIT)),
        (3 + 8, None, int(OrderRole.TIME_STOP)),
    ]
    result = Backtest(_bars(SCALING), "bear_trap", qty=10, **RUNNER, **SMALL).run()
    frame = _bars(SCALING)
    ts = frame.get_column("ts").to_list()
    fills = result.fills_ns.select("ts", "side", "role", "qty", "price").rows()
    assert fills == [
        (ts[3 + 4], "BUY", "ENTRY", 10.0, 84.7),
        (ts[3 + 5], "SELL", "SIGNAL_EXIT", 4.0, 84.95),
        (ts[3 + 6], "SELL", "SIGNAL_EXIT", 3.0, 86.05),
        (ts[3 + 9], "SELL", "TIME_STOP", 3.0, 86.25),
    ]
    (trade,) = result.trades_ns.iter_rows(named=True)
    assert (trade["qty"], trade["entry_price"], trade["exit_reason"]) == (10.0, 84.7, "time_stop")
    assert trade["exit_price"] == pytest.approx((4 * 84.95 + 3 * 86.05 + 3 * 86.25) / 10)
    assert trade["pnl"] == pytest.approx(4 * 0.25 + 3 * 1.35 + 3 * 1.55)
    # cash + the position marked at each close is the equity: realized so far plus the rest
    equity = result.equity_ns.get_column("equity").to_list()
    assert equity[3 + 4] == pytest.approx(100_000 + 10 * (84.92 - 84.7))
    assert equity[3 + 5] == pytest.approx(100_000 + 4 * 0.25 + 6 * (86.1 - 84.7))
    assert equity[3 + 6] == pytest.approx(100_000 + 4 * 0.25 + 3 * 1.35 + 3 * (86.2 - 84.7))
    assert equity[-1] == pytest.approx(100_000 + trade["pnl"])
    assert result.verdicts_ns.get_column("approved").all()


def test_scale_outs_round_half_down_to_the_lot_of_the_position_open() -> None:
    """seed 003 (10%-of-equity sizing, staged exits): equity-runner sizes 118 shares; 40% is
    47.2 -> 47, then half of 71 is 35.5 -> 35 (a half lot rounds down), the runner the 36 left."""
    result = Backtest(_bars(SCALING), "bear_trap", profile="equity-runner", **RUNNER, **SMALL).run()
    assert result.fills_ns.get_column("qty").to_list() == [118.0, 47.0, 35.0, 36.0]
    assert result.verdicts_ns.get_column("qty").to_list() == [118.0, 47.0, 35.0, 36.0]


def test_scale_outs_agree_between_the_two_drivers() -> None:
    """seed 003's staged exits: the fused backtest loop and the event driver give the same
    journal (equity-runner sizing: odd lots, rounded half-down)."""
    from backstop.brokers.sim.backtest import run_backtest
    from backstop.engine.profile import RiskProfile
    from backstop.runners.stepwise import run_event_driven

    frame = _bars(SCALING)
    table = _intents(frame, **RUNNER)
    profile = RiskProfile.load("equity-runner")
    fast = run_backtest(frame, table, profile=profile)
    slow = run_event_driven(frame, table, profile=profile)
    for name in ("orders", "fills", "trades", "verdicts", "equity", "guard_events"):
        assert getattr(fast, name).equals(getattr(slow, name)), name
    assert fast.fills.height == 4


def test_the_trade_is_closed_by_its_time_stop() -> None:
    """seed 003's active management: a Bear Trap trade is held at most max_hold_minutes;
    filled at bar 4's open, it has been held 3 minutes at bar 6's close."""
    table = _intents(_bars(CRASH), max_hold_minutes=3)
    assert table.filter(pl.col("intent") == 1).select("bar", "exit_reason").rows() == [
        (3 + 6, int(OrderRole.TIME_STOP))
    ]
    trade = (
        Backtest(_bars(CRASH), "bear_trap", profile="equity-runner", max_hold_minutes=3, **SMALL)
        .run()
        .trades_ns.row(0, named=True)
    )
    assert (trade["entry_price"], trade["exit_price"], trade["exit_reason"]) == (
        84.7,
        84.8,
        "time_stop",
    )
    assert trade["qty"] == float(int(10_000 // 84.7))  # equity-runner: 10% of equity


def test_the_stop_trails_the_best_close_by_atr_and_stops_the_trade_out() -> None:
    """seed 003's active management: the stop follows the trade up (ATR 2 here). At bar 4
    the ATR is (1.1 + 0.25) / 2 and the best close 84.8: the stop moves to 84.4625; at bar 5
    to 84.85 - 0.5 x (0.25 + 0.28) / 2 = 84.7175, which bar 6's low (84.7) takes out."""
    table = _intents(_bars(CRASH), trail_atr=0.5)
    updates = table.filter(pl.col("kind") == 3)
    assert updates["bar"].to_list() == [3 + 4, 3 + 5]
    assert updates["stop_px"].to_list() == pytest.approx([84.4625, 84.7175], abs=1e-9)
    assert table.filter(pl.col("intent") == 1).is_empty()
    result = Backtest(_bars(CRASH), "bear_trap", trail_atr=0.5, **SMALL).run()
    trade = result.trades_ns.row(0, named=True)
    assert (trade["exit_reason"], trade["exit_price"]) == ("stop_loss", pytest.approx(84.7175))
    assert result.summary()["verdicts_by_reason"] == {"STOP_MOVED": 2}


def test_everything_is_closed_by_the_close_and_nothing_opened_after_it() -> None:
    """seed 003: Bear Trap is intraday: out by 15:55 New York, no entry at or after it. The
    session here starts at 15:44, so the reclaim is bar 3 (15:47) and bar 10 (15:54) ends at
    15:55."""
    late = CRASH + [(84.8, 84.85, 84.75, 84.8, 1000.0)] * 4
    table = _intents(_bars(late, datetime(2024, 1, 3, 15, 44, tzinfo=NY)))
    assert table.filter(pl.col("intent") == 1).select("bar", "exit_reason").rows() == [
        (3 + 10, int(OrderRole.EOD_CLOSE))
    ]
    after = _intents(_bars(CRASH, datetime(2024, 1, 3, 15, 52, tzinfo=NY)))
    assert after.is_empty()  # the reclaim bar (15:55) ends after the close time


def test_runs_from_the_cli_and_the_api_on_the_sample(tmp_path: Path, capsys) -> None:
    """seed 003 on the bundled sample (synthetic bars never fall 15%: a 0.5% crash here)."""
    argv = ["backtest", "--strategy", "bear_trap", "--param", "crash_pct=0.005"]
    code = main([*argv, "--profile", "equity-runner", "--json", "--journal", str(tmp_path / "j")])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["round_trips"] > 0
    assert set(out["verdicts_by_reason"]) == {"STOP_MOVED"}
    api = Backtest(sample_bars(), "bear_trap", profile="equity-runner", crash_pct=0.005).run()
    assert api.trades.height == out["round_trips"]
