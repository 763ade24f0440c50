"""The same strategy function, on a rolling window, gives the live signal at each newest bar.

Live, a strategy runs on the last N bars and its newest rows are the signals to act on; the
backtest runs it once on the whole history. Both must agree bar for bar.
"""

from __future__ import annotations

import polars as pl

from backstop.data import gbm_bars
from backstop.strategies import get_strategy, latest_intents

KEYS = ["ts", "symbol", "side", "intent", "qty", "stop_pct", "target_pct"]


def test_rolling_window_newest_rows_equal_full_history_rows() -> None:
    strategy = get_strategy("sma_cross")
    params = {"fast": 3, "slow": 8}
    bars = gbm_bars(400, 2, seed=21, sigma=0.004)
    full = strategy.intents(bars, params).select(KEYS)
    stamps = bars.get_column("ts").unique().sort().to_list()
    window = 8 + 1  # slow SMA plus the previous bar the cross compares with
    live = []
    for k in range(window - 1, len(stamps)):
        win = bars.filter(pl.col("ts").is_between(stamps[k - window + 1], stamps[k]))
        live.append(latest_intents(strategy, win, params).select(KEYS))
    live_all = pl.concat(live).sort(["ts", "symbol"])
    expected = full.filter(pl.col("ts") >= stamps[window - 1]).sort(["ts", "symbol"])
    assert expected.height > 20
    assert live_all.equals(expected)


def test_window_too_short_for_the_slow_average_gives_no_signal() -> None:
    strategy = get_strategy("sma_cross")
    bars = gbm_bars(50, 1, seed=1)
    assert latest_intents(strategy, bars.head(3), {"fast": 2, "slow": 3}).is_empty()
    assert latest_intents(strategy, bars.head(0), {"fast": 2, "slow": 3}).is_empty()
