"""Matplotlib views of a run: price with trades, equity, drawdown; a sweep's heat map.

Figures are built with ``matplotlib.figure.Figure``, never through pyplot: nothing is added to
pyplot's registry (so Jupyter shows a returned figure once, not again at the end of the
cell), and the process's backend is never read or switched (a script keeps the backend it
chose). A figure shows itself in Jupyter as a PNG and is saved with ``fig.savefig(path)``.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from backstop.errors import ConfigError

if TYPE_CHECKING:
    from backstop.engine.result import BacktestResult

MAX_POINTS = 20_000  # thin long series for drawing; the data itself is never altered
WIN_COLOR = "tab:green"
LOSS_COLOR = "tab:red"


class ResultFigure(Figure):
    """A matplotlib Figure that renders itself as PNG where rich display asks for one."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=80)
        return buf.getvalue()


def _thin(n: int) -> np.ndarray:
    step = max(1, n // MAX_POINTS)
    return np.arange(0, n, step)


def _dt(col: pl.Series, zone: str) -> np.ndarray:
    """int ns UTC as the wall-clock times of ``zone`` (matplotlib draws naive datetimes)."""
    local = col.cast(pl.Datetime("ns", "UTC")).dt.convert_time_zone(zone)
    return local.dt.replace_time_zone(None).to_numpy()


def plot_result(result: BacktestResult, symbol: str | None = None) -> ResultFigure:
    """Three panels sharing the time axis: one symbol's closes with a line from each trade's
    entry to its exit (green for a net win, red otherwise), equity, and drawdown in %."""
    from backstop.engine.display import run_title

    known = result.arrays.symbols
    if symbol is None:
        symbol = known[0]
    elif symbol not in known:
        raise ConfigError("symbol", f"no bars for {symbol!r} in this run (known: {list(known)})")
    bars = result.bars.filter(pl.col("symbol") == symbol)
    trades = result.trades_ns.filter(pl.col("symbol") == symbol)
    equity = result.equity_ns
    zone = result.zone
    fig = ResultFigure(figsize=(11, 8), layout="constrained")
    ax_p, ax_e, ax_d = fig.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2, 1]}
    ).tolist()
    bt = _dt(bars.get_column("ts"), zone)
    close = bars.get_column("close").to_numpy()
    idx = _thin(len(bt))
    ax_p.plot(bt[idx], close[idx], lw=0.7, color="0.3", label=f"{symbol} close")
    if trades.height:
        _draw_trades(ax_p, trades, zone)
    ax_p.set_ylabel("price")
    ax_p.legend(loc="upper left", fontsize=8)
    ax_p.set_title(f"{run_title(result)}  [run {result.run_id}, profile {result.profile.name}]")
    et = _dt(equity.get_column("ts"), zone)
    eq = equity.get_column("equity").to_numpy()
    idx = _thin(len(eq))
    ax_e.plot(et[idx], eq[idx], lw=0.8, color="tab:blue", label="equity")
    ax_e.set_ylabel("equity")
    dd = drawdown_pct(eq, result.config.initial_cash)
    ax_d.fill_between(et[idx], dd[idx], 0.0, color=LOSS_COLOR, alpha=0.3, label="drawdown")
    ax_d.set_ylabel("drawdown %")
    ax_d.set_xlabel(f"time ({zone})")
    return fig


def drawdown_pct(eq: np.ndarray, initial_cash: float) -> np.ndarray:
    """Equity below its running peak (the initial cash counting as the first), in percent."""
    if len(eq) == 0:
        return eq
    peak = np.maximum.accumulate(np.concatenate(([initial_cash], eq)))[1:]
    return (eq / peak - 1.0) * 100.0


def _draw_trades(ax: Any, trades: pl.DataFrame, zone: str) -> None:
    """Entry markers and one entry-to-exit segment per trade, coloured by its net outcome."""
    from matplotlib.dates import date2num

    et = date2num(_dt(trades.get_column("entry_ts"), zone))
    xt = date2num(_dt(trades.get_column("exit_ts"), zone))
    ep = trades.get_column("entry_price").to_numpy()
    xp = trades.get_column("exit_price").to_numpy()
    win = trades.get_column("net_pnl").to_numpy() > 0
    segs = np.stack([np.column_stack([et, ep]), np.column_stack([xt, xp])], axis=1)
    colors = np.where(win, WIN_COLOR, LOSS_COLOR).tolist()
    ax.add_collection(LineCollection(list(segs), colors=colors, linewidths=1.6, label="trade"))
    ax.scatter(et, ep, marker="^", s=14, color="tab:blue", label="entry", zorder=3)
    ax.scatter(xt, xp, marker="v", s=14, c=colors, zorder=3)


def plot_heatmap(
    table: pl.DataFrame, x: str, y: str, value: str, *, agg: str = "max"
) -> ResultFigure:
    """A heat map of ``value`` over two parameters of a sweep table; rows sharing (x, y)
    (other parameters varied) are combined with ``agg`` (max, mean or min)."""
    for col in (x, y, value):
        if col not in table.columns:
            raise ConfigError(col, f"not a column of the sweep table (columns: {table.columns})")
    if agg not in ("max", "mean", "min"):
        raise ConfigError("agg", f"expected max, mean or min, got {agg!r}")
    grid = table.group_by(x, y).agg(getattr(pl.col(value), agg)()).sort(y, x)
    xs = sorted(set(grid.get_column(x).to_list()))
    ys = sorted(set(grid.get_column(y).to_list()))
    z = np.full((len(ys), len(xs)), np.nan)
    for xv, yv, v in grid.iter_rows():
        z[ys.index(yv), xs.index(xv)] = np.nan if v is None else v
    fig = ResultFigure(figsize=(1.2 + 0.7 * len(xs), 1.2 + 0.5 * len(ys)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(z, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    fig.colorbar(image, ax=ax, label=f"{value} ({agg})")
    for i, j in np.argwhere(np.isfinite(z)).tolist():
        ax.text(j, i, f"{z[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w")
    ax.set_title(f"{value} by {x} and {y}")
    return fig
