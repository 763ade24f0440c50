"""Cycle ids are written once per run and gathered; each equals the id written directly."""

from __future__ import annotations

import numpy as np

from backstop.data import gbm_bars
from backstop.runners.backtest import Backtest


def test_gathered_cycle_ids_equal_the_written_ones() -> None:
    result = Backtest(gbm_bars(2_000, 2, seed=4, sigma=0.004), "sma_cross", fast=5, slow=20).run()
    orders = result.records.orders
    assert len(orders) > 20
    cycles = orders["cycle"]
    gathered = result._cycle_col(cycles)
    assert gathered.to_list() == [f"{result.run_id}-{int(c):07d}" for c in cycles]
    assert gathered.name == "trade_cycle_id"
    # a cycle outside the run's (none in a backtest; a live mirror's may be) is written directly
    odd = np.array([-1, 0, 10**6], dtype=np.int64)
    assert result._cycle_col(odd).to_list() == [
        f"{result.run_id}-{n}" for n in ("-000001", "0000000", "1000000")
    ]
