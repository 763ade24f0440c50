"""Per-strategy limits live (seed 000): a profile's ``[strategy.NAME.*]`` table applies to the
live session's strategy as it does in the backtest, instead of being refused.

The paper run against the fake Alpaca with ``[strategy.sma_cross.risk] max_trades_per_day =
1`` journals the backtest's verdicts on the same bars: the strategy's second entry of the day
is refused with MAX_TRADES_PER_DAY live as in the backtest.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

import backstop
from backstop.engine.config import BacktestConfig
from backstop.engine.journal import read_table, write_journal
from backstop.engine.profile import RiskProfile
from backstop.runners.live.paper import PaperOptions, run_paper
from backstop.runners.live.runner import JOURNAL, Mode

BARS = 160
PARAMS = {"fast": 5, "slow": 20}
IDS = ("trade_cycle_id", "client_order_id", "run_id")


def test_a_strategy_table_limits_the_live_strategy_as_in_the_backtest(tmp_path: Path) -> None:
    profile = RiskProfile.from_mapping(
        {"strategy": {"sma_cross": {"risk": {"max_trades_per_day": 1}}}}
    )
    bars = backstop.sample_bars()
    first = bars.get_column("ts").unique().sort().head(BARS)
    bars = bars.filter(pl.col("ts").is_in(first.implode()))
    run_paper(
        PaperOptions("alpaca-fake", "sma_cross", PARAMS, None, profile, Mode.PAPER,
                     tmp_path / "run", bars=BARS)
    )  # fmt: skip
    ref = backstop.Backtest(
        bars, "sma_cross", profile=profile, config=BacktestConfig(legs_live_on_entry_bar=False),
        **PARAMS,
    ).run()  # fmt: skip
    expected = read_table(write_journal(ref, tmp_path / "ref.duckdb"), "verdicts")
    live = read_table(tmp_path / "run" / JOURNAL, "verdicts")
    drop = [c for c in IDS if c in live.columns]
    assert live.drop(drop).equals(expected.drop(drop))
    refused = live.filter(pl.col("reason_codes").list.contains("MAX_TRADES_PER_DAY"))
    assert refused.height >= 1 and set(refused["strategy_id"]) == {"sma_cross"}
