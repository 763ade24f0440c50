"""Performance statistics of a run, from its equity curve and round trips.

Sharpe and Sortino use daily returns (the equity at each UTC day's last timestamp) scaled by
sqrt(252): intraday bar returns would overstate them through the choice of bar size. With
fewer than two days of data they are reported as NaN rather than invented.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

NS_PER_DAY = 86_400 * 10**9
NS_PER_YEAR = 365.25 * NS_PER_DAY


def compute_stats(
    equity: pl.DataFrame, trades: pl.DataFrame, initial_cash: float
) -> dict[str, float]:
    """Total return, CAGR, max drawdown, Sharpe, Sortino, win rate, profit factor, expectancy,
    exposure and trade count."""
    eq = equity.get_column("equity").to_numpy()
    ts = equity.get_column("ts").to_numpy()
    out: dict[str, float] = {"trade_count": float(trades.height)}
    if len(eq) == 0:
        return out | {"total_return": 0.0}
    end = float(eq[-1])
    out["start_equity"] = float(initial_cash)
    out["end_equity"] = end
    out["total_return"] = end / initial_cash - 1.0
    years = (ts[-1] - ts[0]) / NS_PER_YEAR
    out["cagr"] = (end / initial_cash) ** (1.0 / years) - 1.0 if years > 0 and end > 0 else math.nan
    peak = np.maximum.accumulate(np.concatenate(([initial_cash], eq)))[1:]
    out["max_drawdown"] = float(np.min(eq / peak - 1.0))
    daily = (
        equity.group_by((pl.col("ts") // NS_PER_DAY).alias("day"), maintain_order=True)
        .agg(pl.col("equity").last())
        .sort("day")
        .get_column("equity")
        .to_numpy()
    )
    rets = np.diff(np.concatenate(([initial_cash], daily))) / np.concatenate(
        ([initial_cash], daily[:-1])
    )
    if len(daily) >= 2 and np.std(rets, ddof=1) > 0:
        out["sharpe"] = float(np.mean(rets) / np.std(rets, ddof=1) * math.sqrt(252))
        downside = rets[rets < 0]
        dd = math.sqrt(float(np.mean(np.minimum(rets, 0.0) ** 2))) if len(downside) else 0.0
        out["sortino"] = float(np.mean(rets) / dd * math.sqrt(252)) if dd > 0 else math.inf
    else:
        out["sharpe"] = math.nan
        out["sortino"] = math.nan
    net = trades.get_column("net_pnl").to_numpy() if trades.height else np.zeros(0)
    wins = net[net > 0]
    losses = net[net < 0]
    out["win_rate"] = float(len(wins) / len(net)) if len(net) else math.nan
    out["profit_factor"] = (
        float(wins.sum() / -losses.sum()) if len(losses) else (math.inf if len(wins) else math.nan)
    )
    out["expectancy"] = float(net.mean()) if len(net) else math.nan
    expo = equity.get_column("gross_exposure").to_numpy()
    out["exposure"] = float((expo > 0).mean())
    return out
