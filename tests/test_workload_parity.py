"""The engine against an independent plain-loop implementation of the WORKLOAD rules.

Trade lists must agree one for one: entry and exit bars, prices, reasons, P&L.
"""

from __future__ import annotations

import json

import polars as pl
import pytest
from reference_workload import reference_trades, reference_trades_by_symbol

from backstop.cli import main
from backstop.data import gbm_bars, write_workload
from backstop.runners.backtest import Backtest


def _compare(result_trades: pl.DataFrame, ref: list) -> None:
    assert result_trades.height == len(ref)
    got = result_trades.select(
        "entry_ts", "entry_price", "exit_ts", "exit_price", "exit_reason", "pnl", "ambiguous"
    ).rows()
    for k, (g, r) in enumerate(zip(got, ref, strict=True)):
        assert g[0] == r.entry_ts, k
        assert g[2] == r.exit_ts, k
        assert g[4] == r.exit_reason, k
        assert g[1] == pytest.approx(r.entry_price, abs=1e-9), k
        assert g[3] == pytest.approx(r.exit_price, abs=1e-9), k
        assert g[5] == pytest.approx(r.pnl, abs=1e-6), k
        assert g[6] == r.ambiguous, k


def test_workload_s_matches_reference_trade_for_trade() -> None:
    bars = gbm_bars(100_000, 1, seed=42)
    result = Backtest(bars, "sma_cross").run()
    ref = reference_trades(
        *(bars.get_column(c).to_numpy() for c in ("ts", "open", "high", "low", "close"))
    )
    assert len(ref) > 1000
    _compare(result.trades_ns, ref)
    assert result.pnl == pytest.approx(sum(t.pnl for t in ref), abs=1e-6)


def test_workload_m_matches_reference_round_trips_and_pnl() -> None:
    bars = gbm_bars(1_000_000, 1, seed=42)
    result = Backtest(bars, "sma_cross").run()
    ref = reference_trades(
        *(bars.get_column(c).to_numpy() for c in ("ts", "open", "high", "low", "close"))
    )
    _compare(result.trades_ns, ref)


def test_many_symbols_one_account_match_reference_per_symbol() -> None:
    bars = gbm_bars(8_000, 5, seed=11)
    result = Backtest(bars, "sma_cross", fast=5, slow=20).run()
    ref = reference_trades_by_symbol(bars, fast=5, slow=20)
    for symbol, trades in ref.items():
        _compare(result.trades_ns.filter(pl.col("symbol") == symbol).sort("entry_ts"), trades)


def test_high_volatility_paths_with_ambiguous_bars_match() -> None:
    bars = gbm_bars(30_000, 1, seed=5, sigma=0.004)
    legs = {"stop_pct": 0.002, "target_pct": 0.003}
    result = Backtest(bars, "sma_cross", **legs).run()
    ref = reference_trades(
        *(bars.get_column(c).to_numpy() for c in ("ts", "open", "high", "low", "close")), **legs
    )
    assert sum(t.ambiguous for t in ref) > 10
    _compare(result.trades_ns, ref)
    amb = result.ambiguity()
    assert amb["ambiguous_round_trips"] == sum(t.ambiguous for t in ref)
    low, high = amb["pnl_range"]
    assert low == pytest.approx(amb["pnl_by_ordering"]["stop_first"])
    assert high > low


def test_cli_json_on_workload_s_file(tmp_path, capsys) -> None:
    path = write_workload(tmp_path / "S.parquet", "S")
    code = main(
        [
            "backtest",
            "--data",
            str(path),
            "--strategy",
            "sma_cross",
            "--param",
            "fast=10",
            "--param",
            "slow=50",
            "--param",
            "stop_pct=0.01",
            "--param",
            "target_pct=0.02",
            "--param",
            "qty=100",
            "--journal",
            str(tmp_path / "j"),
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    bars = pl.read_parquet(path)
    ref = reference_trades(
        *(bars.get_column(c).to_numpy() for c in ("ts", "open", "high", "low", "close"))
    )
    assert out["bars"] == 100_000
    assert out["round_trips"] == len(ref)
    assert out["pnl"] == pytest.approx(sum(t.pnl for t in ref), abs=1e-4)
    for key in ("run_seconds", "journal", "signals", "orders", "verdicts_by_reason"):
        assert key in out
