"""Seed 001's templates K1-K5 on hand-made MES bars (tick 0.25, $5 a point).

Each test builds the one bar its template fires on and checks the entry's side, its stop
(the structure one tick beyond, at most 12 ticks away: the constitution) and target to the
tick, then an in-flight exit (thesis, volatility, time) bar by bar.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from kit import bars

from backstop import Backtest
from backstop.cli import main
from backstop.data import sample_bars
from backstop.domain.enums import OrderRole
from backstop.strategies import get_strategy

QUIET = [(5000.0, 5000.5, 4999.5, 5000.0)] * 3  # range 4999.5-5000.5, 4 ticks a bar


def _mes(rows: list[tuple]) -> pl.DataFrame:
    return bars(rows, symbol="MES")


def _intents(name: str, rows: list[tuple], **params) -> pl.DataFrame:
    return get_strategy(name).intents(_mes(rows), {"range_bars": 3} | params)


def _row(table: pl.DataFrame, k: int = 0) -> tuple:
    return table.select("bar", "side", "intent", "qty", "stop_px", "target_px").row(k)


def test_k1_fades_a_close_far_below_vwap_back_to_it() -> None:
    """seed 001 K1 (VWAP mean reversion): 8+ ticks below the session VWAP and an up close is
    a long whose target is the VWAP (to the tick below it) and whose stop is 12 ticks."""
    rows = [*QUIET, (4996.0, 4997.0, 4995.0, 4996.75)]
    vwap = (3 * 5000.0 + (4997.0 + 4995.0 + 4996.75) / 3) / 4  # equal volumes
    assert (vwap - 4996.75) / 0.25 >= 8
    table = _intents("k1_vwap_reversion", rows)
    assert _row(table) == (3, 1, 0, 1.0, 4996.75 - 3.0, 4999.0)
    assert 4999.0 <= vwap < 4999.25
    assert _intents("k1_vwap_reversion", rows, band_ticks=13).is_empty()


def test_k2_fades_a_failed_break_and_leaves_when_the_thesis_breaks() -> None:
    """seed 001 K2 (failed break) with in-flight thesis invalidation: a break above the
    3-bar high (5000.5) that closes back inside is a short, stop one tick over the bar's
    high, target the range's middle; a later close back above 5000.5 ends the thesis."""
    rows = [
        *QUIET,
        (5000.25, 5002.0, 5000.0, 5000.25),
        (5000.25, 5001.0, 5000.25, 5000.75),
        (5000.75, 5001.0, 5000.5, 5000.75),
    ]
    table = _intents("k2_failed_break", rows)
    assert _row(table) == (3, -1, 0, 1.0, 5002.25, 5000.0)
    assert table.filter(pl.col("intent") == 1).select("bar", "exit_reason").rows() == [
        (4, int(OrderRole.THESIS_INVALIDATION))
    ]
    trade = Backtest(_mes(rows), "k2_failed_break", range_bars=3).run().trades.row(0, named=True)
    assert (trade["entry_price"], trade["exit_price"], trade["exit_reason"]) == (
        5000.25,
        5000.75,
        "thesis_invalidation",
    )
    assert trade["net_pnl"] == pytest.approx(-0.5 * 5)


def test_k3_buys_a_sweep_of_the_session_low_and_times_out() -> None:
    """seed 001 K3 (sweep) with the in-flight time exit: 2 ticks under the session low and a
    close back above it in the top half of the bar is a long, stop a tick under the sweep."""
    rows = [*QUIET, (4999.25, 5000.0, 4998.75, 4999.75), *[(4999.75, 5000.0, 4999.5, 4999.75)] * 3]
    table = _intents("k3_sweep", rows, max_hold_bars=2)
    assert _row(table) == (3, 1, 0, 1.0, 4998.5, 4999.75 + 7 * 0.25)  # 5 ticks risk, 1.5R: 7
    assert table.filter(pl.col("intent") == 1).select("bar", "exit_reason").rows() == [
        (5, int(OrderRole.TIME_STOP))
    ]
    assert _intents("k3_sweep", rows, sweep_ticks=4).is_empty()


IMPULSE = [*QUIET, (5000.5, 5003.0, 5000.5, 5002.75)]


def test_k4_buys_an_impulse_through_the_range_and_leaves_on_a_volatility_shock() -> None:
    """seed 001 K4 (momentum) with the in-flight volatility exit: a bar 2.5x the average range
    closing in its top third above the 3-bar high; then a bar 3x+ the average range."""
    rows = [*IMPULSE, (5002.75, 5006.25, 5001.25, 5005.0), (5005.0, 5005.25, 5004.75, 5005.0)]
    table = _intents("k4_momentum", rows, vol_lookback=3)
    assert _row(table) == (3, 1, 0, 1.0, 5000.25, 5002.75 + 1.5 * 2.5)
    assert table.filter(pl.col("intent") == 1).select("bar", "exit_reason").rows() == [
        (4, int(OrderRole.VOLATILITY_EXIT))
    ]
    later = _intents("k4_momentum", rows, impulse_mult=2.6)  # bar 3 is no impulse; bar 4 is
    assert later.select("bar", "intent").rows() == [(4, 0)]


def test_stops_are_capped_at_twelve_ticks_so_the_constitution_approves_them() -> None:
    """seed 001: $15 max risk and a 12-tick stop. A 20-tick structural stop is pulled in to
    12 ticks (12 x 0.25 x $5 = $15 on one contract); at 13 ticks the constitution refuses."""
    rows = [*QUIET, (5000.5, 5005.5, 5000.5, 5005.25), (5005.25, 5005.5, 5005.0, 5005.25)]
    assert _row(_intents("k4_momentum", rows)) == (3, 1, 0, 1.0, 5002.25, 5009.75)
    ok = Backtest(_mes(rows), "k4_momentum", profile="micro-futures-constitution", range_bars=3)
    assert ok.run().orders.filter(pl.col("role") == "ENTRY")["status"].to_list() == ["FILLED"]
    wide = Backtest(
        _mes(rows), "k4_momentum", profile="micro-futures-constitution", range_bars=3, stop_ticks=13
    ).run()
    assert wide.orders.is_empty()
    assert wide.verdicts["reason_codes"][0].to_list() == ["STOP_TOO_WIDE", "MAX_LOSS_CAP"]


def test_k5_keeps_a_templates_entries_only_where_the_tape_is_not_noise() -> None:
    """seed 001 K5 (noise filter, the meta-strategy): K4's entry after closes 5000.5, 4999.5,
    5000.5 has an efficiency ratio of 2.25 / 4.25 = 0.53 over 3 closes: kept at 0.5, not 0.6."""
    rows = [
        (5000.0, 5000.5, 4999.5, 5000.5),
        (5000.0, 5000.5, 4999.5, 4999.5),
        (5000.0, 5000.5, 4999.5, 5000.5),
        (5000.5, 5003.0, 5000.5, 5002.75),
    ]
    kept = _intents("k5_noise_filter", rows, template=4, er_bars=3, min_efficiency=0.5)
    assert _row(kept) == _row(_intents("k4_momentum", rows))
    assert _intents("k5_noise_filter", rows, template=4, er_bars=3, min_efficiency=0.6).is_empty()


@pytest.mark.parametrize(
    "name",
    ["k1_vwap_reversion", "k2_failed_break", "k3_sweep", "k4_momentum", "k5_noise_filter"],
)
def test_each_template_runs_from_the_cli_and_the_api_on_the_sample(
    name: str, tmp_path: Path, capsys
) -> None:
    """seed 001's templates on the bundled sample (cent prices: tick 0.01), every signal an
    order, none refused."""
    argv = ["backtest", "--strategy", name, "--param", "tick=0.01", "--json"]
    code = main([*argv, "--journal", str(tmp_path / "j"), "--force"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["round_trips"] > 0
    assert out["verdicts_by_reason"] == {}
    assert Backtest(sample_bars(), name, tick=0.01).run().trades.height == out["round_trips"]
