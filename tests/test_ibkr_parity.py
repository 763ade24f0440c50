"""Parity on IB: ``backstop paper --broker ibkr-fake`` over MES bars journals what
``backstop backtest`` journals on the same bars.

The bars are the sample's SYN000 scaled to an MES price (x50, on the 0.25 tick), so the
contract is a CME future with its $5 multiplier at the fake gateway and in the backtest.
With the live run's namespace set to the backtest's run id, the verdicts, fills, trades and
guard events are equal row by row, ids included, and so are the orders (client ids
included) but for what the venue forces:

- protective legs work from the bar after the entry's fill (a live runner hears of a fill
  after its bar): the backtest runs with ``legs_live_on_entry_bar=False``;
- legs an exit makes redundant are cancelled when the exit is sent, not when it fills, so
  their ``done_ts`` is earlier (IB has no reduce-only: a leg left working beside a filled
  exit would open a position).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

import backstop
from backstop.engine.config import BacktestConfig
from backstop.engine.journal import read_table, write_journal
from backstop.runners.live.paper import PaperOptions, run_paper
from backstop.runners.live.runner import JOURNAL, Mode

BARS = 160
PARAMS = {"fast": 5, "slow": 20}
TICK = 0.25


def mes_bars(stamps: int) -> pl.DataFrame:
    bars = backstop.sample_bars()
    first = bars.get_column("ts").unique().sort().head(stamps)
    prices = [((pl.col(c) * 50 / TICK).round() * TICK).alias(c) for c in ("open", "high",
              "low", "close")]  # fmt: skip
    return (
        bars.filter(pl.col("ts").is_in(first.implode()) & (pl.col("symbol") == "SYN000"))
        .with_columns(prices)
        .with_columns(symbol=pl.lit("MES"))
    )


def test_paper_on_ib_over_mes_equals_the_backtest(tmp_path: Path) -> None:
    bars = mes_bars(BARS)
    config = BacktestConfig(legs_live_on_entry_bar=False)
    ref = backstop.Backtest(bars, "sma_cross", config=config, **PARAMS).run()
    expected = write_journal(ref, tmp_path / "ref.duckdb")
    summary = run_paper(
        PaperOptions("ibkr-fake", "sma_cross", PARAMS, None, None, Mode.PAPER, tmp_path / "run",
                     namespace=ref.run_id, bars=BARS, data=bars)
    )  # fmt: skip
    assert (summary["symbols"], summary["steps"]) == (["MES"], BARS)
    assert (summary["round_trips"], summary["fills"], summary["orders"]) == (3, 6, 12)
    live = tmp_path / "run" / JOURNAL
    for name in ("verdicts", "fills", "trades", "guard"):
        assert read_table(live, name).equals(read_table(expected, name)), name
    a, e = read_table(live, "orders"), read_table(expected, "orders")
    assert a.drop("done_ts").equals(e.drop("done_ts"))
    assert a["client_order_id"].to_list() == e["client_order_id"].to_list()
    moved = a.with_columns(bt=e["done_ts"]).filter(pl.col("done_ts") != pl.col("bt"))
    assert moved.height > 0
    assert set(moved["role"]) <= {"STOP_LOSS", "TAKE_PROFIT"}
    assert (moved["done_ts"] < moved["bt"]).all()
    fills = read_table(live, "fills")
    assert ((fills["price"] / TICK).round() * TICK == fills["price"]).all()  # on the tick
