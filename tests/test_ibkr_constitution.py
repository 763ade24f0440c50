"""Seed 001's constitution live on MES against the fake TWS gateway.

``micro-futures-constitution``: one contract, $15 max risk and a 12-tick stop, 2 trades a
day, $30 daily loss, a lockout after 2 losses, the data-quality gate and kill. sma_cross
runs on MES bars (the sample's SYN000 scaled to the 0.25 tick) with a 10-tick stop (0.05%
of ~5,000) and asks for 3 contracts. The refusals the backtest end-to-end test finds
(``tests/test_cli_profiles.py``: MAX_TRADES_PER_DAY, SIZE_CAPPED) appear live, verdict for
verdict equal to the backtest of the same bars, with the rest of the constitution (lockout,
daily loss, kill). A dead feed (a 36-minute hole in the bars) trips the data-quality kill
and no entry goes out after it; an ESZ5-style desync (a position opened at the gateway
outside the runner) trips the kill switch at the timer reconcile; OBSERVE decides and sends
nothing. LIVE against the fake is refused by readiness (``tests/test_ibkr_runner.py``).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from test_ibkr_parity import mes_bars

import backstop
from backstop.engine.config import BacktestConfig
from backstop.engine.journal import read_table, write_journal
from backstop.runners.live.paper import PaperOptions, run_paper
from backstop.runners.live.runner import JOURNAL, LiveRunner, Mode
from backstop.testing.fake_ibkr import FakeIBKR

PROFILE = "micro-futures-constitution"
PARAMS = {"fast": 5, "slow": 20, "stop_pct": 0.0005, "target_pct": 0.001, "qty": 3}
CONFIG = BacktestConfig(legs_live_on_entry_bar=False)


def _live(bars: pl.DataFrame, run: Path, mode: Mode = Mode.PAPER) -> dict:
    return run_paper(
        PaperOptions("ibkr-fake", "sma_cross", PARAMS, None, PROFILE, mode, run,
                     bars=bars["ts"].n_unique(), data=bars, namespace="c001")
    )  # fmt: skip


def _codes(verdicts: pl.DataFrame) -> set[str]:
    refused = verdicts.filter(~pl.col("approved"))
    return set(refused["reason_codes"].explode().to_list())


def _backtest(bars: pl.DataFrame, tmp_path: Path) -> Path:
    ref = backstop.Backtest(bars, "sma_cross", profile=PROFILE, config=CONFIG, **PARAMS).run()
    return write_journal(ref, tmp_path / "ref.duckdb")


def _without_ids(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop([c for c in ("trade_cycle_id", "client_order_id") if c in frame.columns])


def test_the_constitution_refuses_live_as_in_its_backtest(tmp_path: Path) -> None:
    bars = mes_bars(300)
    summary = _live(bars, tmp_path / "run")
    expected = _backtest(bars, tmp_path)
    live = tmp_path / "run" / JOURNAL
    for name in ("verdicts", "trades", "guard"):
        a, e = _without_ids(read_table(live, name)), _without_ids(read_table(expected, name))
        assert a.equals(e), name
    verdicts = read_table(live, "verdicts")
    assert {"MAX_TRADES_PER_DAY", "SIZE_CAPPED"} <= _codes(verdicts)  # as the CLI test
    assert {"CONSECUTIVE_LOSS_LOCKOUT", "DAILY_LOSS_LIMIT", "KILL_SWITCH_ACTIVE"} <= _codes(
        verdicts
    )
    entries = verdicts.filter(pl.col("approved") & (pl.col("intent") == "ENTRY"))
    assert entries.height == 2  # 2 trades a day, then the lockout and the daily-loss kill
    fills = read_table(live, "fills")
    assert set(fills["qty"].abs().to_list()) == {1.0}  # one contract, not the 3 asked for
    trades = read_table(live, "trades")
    assert trades.height == summary["round_trips"] == 2
    guard = read_table(live, "guard")["kind"].to_list()
    assert "LOCKOUT" in guard and "KILL_ACTIVATED" in guard


def test_a_dead_feed_trips_the_data_quality_kill_and_no_entry_follows(tmp_path: Path) -> None:
    bars = mes_bars(120)
    ts = bars["ts"].unique().sort()
    bars = bars.filter(~pl.col("ts").is_between(ts[15], ts[50]))  # the feed stalls 36 min
    _live(bars, tmp_path / "run")
    live = tmp_path / "run" / JOURNAL
    expected = _backtest(bars, tmp_path)
    assert _without_ids(read_table(live, "verdicts")).equals(
        _without_ids(read_table(expected, "verdicts"))
    )
    guard = read_table(live, "guard")
    kill = guard.filter(pl.col("kind") == "KILL_ACTIVATED")
    assert kill["kill_cause"].to_list() == ["DATA_QUALITY"]
    assert int(kill["ts"][0]) == int(ts[51])  # the first bar after the hole
    verdicts = read_table(live, "verdicts")
    assert verdicts.height > 0 and not verdicts["approved"].any()
    assert "KILL_SWITCH_ACTIVE" in _codes(verdicts)
    assert read_table(live, "orders").height == 0


def test_a_desync_at_the_gateway_trips_the_kill_switch(tmp_path: Path) -> None:
    bars = mes_bars(100)
    with FakeIBKR(bars) as fake:

        def outside(runner: LiveRunner) -> None:
            if runner.steps == 10:
                fake.open_external_position("MES", 2.0, float(bars["close"][10]))

        run_paper(
            PaperOptions("ibkr", "sma_cross", PARAMS, ("MES",), PROFILE, Mode.PAPER, tmp_path,
                         fake_url=fake.control_url, port=fake.port, on_step=outside)
        )  # fmt: skip
    guard = read_table(tmp_path / JOURNAL, "guard")
    assert guard.filter(pl.col("kind") == "DESYNC").height == 1
    kill = guard.filter(pl.col("kind") == "KILL_ACTIVATED")
    assert kill["kill_cause"].to_list()[0] == "POSITION_DESYNC"
    desync = read_table(tmp_path / JOURNAL, "reconcile").filter(pl.col("kind") == "POSITION_DESYNC")
    assert desync["symbol"].to_list() == ["MES"]
    assert int(desync["reconcile"][0]) == 1  # the first timer reconcile (after 60 steps)


def test_observe_mode_decides_and_sends_nothing(tmp_path: Path) -> None:
    bars = mes_bars(300)
    with FakeIBKR(bars) as fake:
        summary = run_paper(
            PaperOptions("ibkr", "sma_cross", PARAMS, ("MES",), PROFILE, Mode.OBSERVE, tmp_path,
                         fake_url=fake.control_url, port=fake.port)
        )  # fmt: skip
        assert fake.orders == []  # the gateway received nothing
    assert (summary["mode"], summary["steps"], summary["fills"]) == ("observe", 300, 0)
    verdicts = read_table(tmp_path / JOURNAL, "verdicts")
    assert verdicts.filter(pl.col("approved") & (pl.col("intent") == "ENTRY")).height > 0
