"""Matplotlib views of a run: price with entries/exits, equity with drawdown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from backstop.engine.result import BacktestResult

MAX_POINTS = 20_000  # thin long series for drawing; the data itself is never altered


def _thin(n: int) -> np.ndarray:
    step = max(1, n // MAX_POINTS)
    return np.arange(0, n, step)


def plot_result(result: BacktestResult, symbol: str | None = None) -> Any:
    """Two panels: one symbol's closes with entry/exit markers, and equity with drawdown."""
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg",) and not _interactive():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    symbol = symbol or result.arrays.symbols[0]
    bars = result.bars.filter(pl.col("symbol") == symbol)
    trades = result.trades.filter(pl.col("symbol") == symbol)
    equity = result.equity
    fig, (ax_p, ax_e) = plt.subplots(
        2, 1, figsize=(11, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    bt = bars.get_column("ts").cast(pl.Datetime("ns")).to_numpy()
    close = bars.get_column("close").to_numpy()
    idx = _thin(len(bt))
    ax_p.plot(bt[idx], close[idx], lw=0.7, color="0.3", label=f"{symbol} close")
    if trades.height:
        et = trades.get_column("entry_ts").cast(pl.Datetime("ns")).to_numpy()
        xt = trades.get_column("exit_ts").cast(pl.Datetime("ns")).to_numpy()
        win = trades.get_column("net_pnl").to_numpy() > 0
        ax_p.scatter(
            et,
            trades.get_column("entry_price"),
            marker="^",
            s=14,
            color="tab:blue",
            label="entry",
            zorder=3,
        )
        ax_p.scatter(
            xt[win],
            trades.get_column("exit_price").to_numpy()[win],
            marker="v",
            s=14,
            color="tab:green",
            label="exit (win)",
            zorder=3,
        )
        ax_p.scatter(
            xt[~win],
            trades.get_column("exit_price").to_numpy()[~win],
            marker="v",
            s=14,
            color="tab:red",
            label="exit (loss)",
            zorder=3,
        )
    ax_p.set_ylabel("price")
    ax_p.legend(loc="upper left", fontsize=8)
    ax_p.set_title(f"backstop run {result.run_id}: {result.strategy_name or result.label}")
    et_all = equity.get_column("ts").cast(pl.Datetime("ns")).to_numpy()
    eq = equity.get_column("equity").to_numpy()
    idx = _thin(len(eq))
    ax_e.plot(et_all[idx], eq[idx], lw=0.8, color="tab:blue", label="equity")
    ax_e.set_ylabel("equity")
    ax_d = ax_e.twinx()
    peak = np.maximum.accumulate(eq) if len(eq) else eq
    dd = eq / peak - 1.0 if len(eq) else eq
    ax_d.fill_between(et_all[idx], dd[idx], 0.0, color="tab:red", alpha=0.25, label="drawdown")
    ax_d.set_ylabel("drawdown")
    fig.tight_layout()
    return fig


def _interactive() -> bool:
    try:
        from IPython import get_ipython  # type: ignore[import-not-found]
    except ImportError:
        return False
    return get_ipython() is not None
