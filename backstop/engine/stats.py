"""Performance statistics of a run, from its equity curve and round trips.

Every figure is a plain number; fractions stay fractions (``total_return`` 0.05 is 5%) and
durations are in days. Definitions, so a figure can be checked by hand:

- daily returns: the equity at each UTC day's last timestamp, against the day before (the
  first day against the initial cash). Sharpe, Sortino, annual return and annual volatility
  use them (intraday bar returns would overstate them through the choice of bar size); with
  fewer than two days of data they are NaN rather than invented.
- ``annual_return``: the run's growth compounded to 252 days, ``(end/initial)**(252/days)-1``;
  ``annual_volatility``: the daily returns' sample deviation times sqrt(252); ``calmar``:
  annual return over the absolute max drawdown.
- drawdown: equity against its running peak (the initial cash counts as the first peak). A
  drawdown period is a run of rows under the peak; it lasts from the peak's timestamp to the
  row that regains it (or the last row). ``avg_drawdown`` is the mean depth of the periods.
- trade return: the price move of a round trip in its direction, ``exit/entry - 1`` for a
  long and ``1 - exit/entry`` for a short (before fees); trade duration: exit minus entry ts.
- ``sqn``: sqrt(n) x mean / sample deviation of the trades' net P&L.
- ``buy_hold_return``: each symbol's last close over its first, minus 1, averaged with equal
  weights over the symbols (given by the caller, who has the bars).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

NS_PER_DAY = 86_400 * 10**9
NS_PER_YEAR = 365.25 * NS_PER_DAY
TRADING_DAYS = 252


def compute_stats(
    equity: pl.DataFrame,
    trades: pl.DataFrame,
    initial_cash: float,
    *,
    buy_hold_return: float = math.nan,
) -> dict[str, Any]:
    """Every performance figure of a run from its ``equity`` and ``trades`` frames (the
    result's or the journal's: the same columns), keyed as in ``STAT_LABELS``."""
    eq = equity.get_column("equity").to_numpy().astype(np.float64)
    ts = equity.get_column("ts").to_numpy().astype(np.int64)
    out: dict[str, Any] = {"trade_count": float(trades.height)}
    if len(eq) == 0:
        return out | {"total_return": 0.0}
    end = float(eq[-1])
    out["start_ts"] = int(ts[0])
    out["end_ts"] = int(ts[-1])
    out["duration_days"] = float(ts[-1] - ts[0]) / NS_PER_DAY
    out["start_equity"] = float(initial_cash)
    out["end_equity"] = end
    out["peak_equity"] = float(max(initial_cash, float(eq.max())))
    out["total_return"] = end / initial_cash - 1.0
    out["buy_hold_return"] = float(buy_hold_return)
    years = (ts[-1] - ts[0]) / NS_PER_YEAR
    out["cagr"] = (end / initial_cash) ** (1.0 / years) - 1.0 if years > 0 and end > 0 else math.nan
    out |= _daily_figures(equity, initial_cash)
    out |= _drawdown_figures(ts, eq, initial_cash)
    dd = out["max_drawdown"]
    ann = out["annual_return"]
    out["calmar"] = ann / -dd if dd < 0 and math.isfinite(ann) else math.nan
    out |= _trade_figures(trades)
    expo = equity.get_column("gross_exposure").to_numpy()
    out["exposure"] = float((expo > 0).mean())
    return out


def _daily_figures(equity: pl.DataFrame, initial_cash: float) -> dict[str, float]:
    """Sharpe, Sortino, annual return and volatility from the daily returns."""
    daily = (
        equity.group_by((pl.col("ts") // NS_PER_DAY).alias("day"), maintain_order=True)
        .agg(pl.col("equity").last())
        .sort("day")
        .get_column("equity")
        .to_numpy()
        .astype(np.float64)
    )
    prev = np.concatenate(([initial_cash], daily[:-1]))
    rets = (daily - prev) / prev
    out = dict.fromkeys(("annual_return", "annual_volatility", "sharpe", "sortino"), math.nan)
    if len(daily) < 2:
        return out
    end = float(daily[-1])
    if end > 0:
        out["annual_return"] = (end / initial_cash) ** (TRADING_DAYS / len(daily)) - 1.0
    sd = float(np.std(rets, ddof=1))
    out["annual_volatility"] = sd * math.sqrt(TRADING_DAYS)
    if sd > 0:
        out["sharpe"] = float(np.mean(rets) / sd * math.sqrt(TRADING_DAYS))
        downside = math.sqrt(float(np.mean(np.minimum(rets, 0.0) ** 2)))
        mean = float(np.mean(rets))
        out["sortino"] = mean / downside * math.sqrt(TRADING_DAYS) if downside > 0 else math.inf
    return out


def drawdown_periods(
    ts: np.ndarray, eq: np.ndarray, initial_cash: float
) -> list[tuple[int, int, float]]:
    """Each drawdown period as (peak ts, recovery ts or last ts, depth as a negative fraction).

    A period is a maximal run of rows below the running peak; its peak is the row before the
    run (the first row's timestamp when the initial cash was the peak).
    """
    peak = np.maximum.accumulate(np.concatenate(([initial_cash], eq)))[1:]
    dd = eq / peak - 1.0
    under = np.concatenate(([False], dd < 0, [False])).astype(np.int8)
    edges = np.diff(under)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1  # last row of each run, inclusive
    if len(starts) == 0:
        return []
    t0 = ts[np.maximum(starts - 1, 0)]  # the peak row (row 0 when the cash was the peak)
    t1 = ts[np.minimum(ends + 1, len(eq) - 1)]  # the row regaining the peak, else the last
    # the minimum from each run's start to the next run's start: the rows between runs are
    # at their peak (0), so it is the run's own depth
    depth = np.minimum.reduceat(dd, starts)
    return list(zip(t0.tolist(), t1.tolist(), depth.tolist(), strict=True))


def _drawdown_figures(ts: np.ndarray, eq: np.ndarray, initial_cash: float) -> dict[str, float]:
    periods = drawdown_periods(ts, eq, initial_cash)
    depths = np.array([p[2] for p in periods])
    days = np.array([(p[1] - p[0]) / NS_PER_DAY for p in periods])
    return {
        "max_drawdown": float(depths.min()) if len(periods) else 0.0,
        "avg_drawdown": float(depths.mean()) if len(periods) else 0.0,
        "max_drawdown_duration_days": float(days.max()) if len(periods) else 0.0,
        "avg_drawdown_duration_days": float(days.mean()) if len(periods) else 0.0,
        "drawdown_periods": float(len(periods)),
    }


def trade_returns(trades: pl.DataFrame) -> np.ndarray:
    """Each round trip's price move in its direction, before fees (a fraction)."""
    if trades.height == 0:
        return np.zeros(0)
    move = (trades.get_column("exit_price") / trades.get_column("entry_price") - 1.0).to_numpy()
    sign = np.where(trades.get_column("direction").to_numpy() == "short", -1.0, 1.0)
    return move * sign


def _trade_figures(trades: pl.DataFrame) -> dict[str, float]:
    net = trades.get_column("net_pnl").to_numpy() if trades.height else np.zeros(0)
    n = len(net)
    wins = net[net > 0]
    losses = net[net < 0]
    rets = trade_returns(trades)
    held = (
        (trades.get_column("exit_ts") - trades.get_column("entry_ts")).to_numpy() / NS_PER_DAY
        if n
        else np.zeros(0)
    )
    nan = math.nan
    sd = float(np.std(net, ddof=1)) if n >= 2 else 0.0
    return {
        "win_rate": float(len(wins) / n) if n else nan,
        "best_trade": float(rets.max()) if n else nan,
        "worst_trade": float(rets.min()) if n else nan,
        "avg_trade": float(rets.mean()) if n else nan,
        "max_trade_duration_days": float(held.max()) if n else nan,
        "avg_trade_duration_days": float(held.mean()) if n else nan,
        "profit_factor": (
            float(wins.sum() / -losses.sum()) if len(losses) else (math.inf if len(wins) else nan)
        ),
        "expectancy": float(net.mean()) if n else nan,
        "sqn": math.sqrt(n) * float(net.mean()) / sd if sd > 0 else nan,
    }


def buy_hold_return(bars: pl.DataFrame) -> float:
    """Equal-weighted mean over symbols of last close / first close - 1 (NaN without bars)."""
    if bars.height == 0:
        return math.nan
    # each symbol's closes at its earliest and latest ts, found in one pass per group rather
    # than by sorting every bar (W: 3.4 s -> 0.4 s); a symbol's ts are unique once validated
    ts, close = pl.col("ts"), pl.col("close")
    per = (
        bars.group_by("symbol")
        .agg((close.get(ts.arg_max()) / close.get(ts.arg_min()) - 1.0).alias("r"))
        .sort("symbol")
    )
    return _mean(per.get_column("r"))


def buy_hold_return_of_arrays(sym: np.ndarray, close: np.ndarray, n_sym: int) -> float:
    """``buy_hold_return`` of bars in engine order (ts, then symbol) given as their kernel
    arrays (``sym``: codes numbered in sorted symbol order), to the same bits: a symbol's first
    and last row are its earliest and latest bar, found in one pass over the codes instead of
    a group-by over the bars (W: 0.3 s -> 0.05 s), and only as far into the bars as the last
    symbol to start (and, from the end, to stop) lies: W's 10M bars, 0.07 s -> under 1 ms."""
    n = len(sym)
    if n == 0:
        return math.nan
    first = first_rows(sym, n_sym)
    from_end = first_rows(sym[::-1], n_sym)
    last = np.where(from_end < n, n - 1 - from_end, -1)
    held = last >= 0  # every symbol, for arrays made from the bars
    return _mean(pl.Series("r", close[last[held]] / close[first[held]] - 1.0))


def first_rows(sym: np.ndarray, n_sym: int) -> np.ndarray:
    """Each code's first row in ``sym`` (``len(sym)`` for a code that never occurs).

    Rows are taken in blocks that double in size until every code has been seen: a panel
    whose symbols all trade from the first timestamps is done after its first block, and a
    symbol that starts late costs a pass up to it (past an eighth of the rows, the rest in
    one pass). Each block is ``np.minimum.at`` over its rows, so the answer is the same as
    one ``np.minimum.at`` over every row."""
    n = len(sym)
    first = np.full(n_sym, n, dtype=np.int64)
    start, block = 0, max(8 * n_sym, 4096)
    while start < n:
        stop = n if start >= n // 8 else min(n, start + block)
        np.minimum.at(first, sym[start:stop], np.arange(start, stop, dtype=np.int64))
        start, block = stop, 2 * block
        if bool((first < n).all()):
            break
    return first


def _mean(r: pl.Series) -> float:
    """The mean of the per-symbol returns in symbol order (polars' sum, so both buy & hold
    functions give the same bits), NaN for none."""
    mean = r.mean()
    return float(mean) if isinstance(mean, int | float) else math.nan


def verdicts_by_reason(verdicts: pl.DataFrame) -> dict[str, int]:
    """Verdicts carrying each reason code (a journal's ``verdicts`` table), in enum order."""
    from backstop.domain.enums import ReasonCode

    if verdicts.height == 0:
        return {}
    counts = dict(
        verdicts.select(pl.col("reason_codes").explode().drop_nulls())
        .group_by("reason_codes")
        .len()
        .iter_rows()
    )
    return {c.name: int(counts[c.name]) for c in ReasonCode if counts.get(c.name)}


# key -> (label, kind); kind picks the display format (``format_stat``). Display order.
STAT_LABELS: dict[str, tuple[str, str]] = {
    "start_ts": ("Start", "ts"),
    "end_ts": ("End", "ts"),
    "duration_days": ("Duration", "days"),
    "exposure": ("Exposure time", "pct"),
    "start_equity": ("Equity start", "money"),
    "end_equity": ("Equity final", "money"),
    "peak_equity": ("Equity peak", "money"),
    "total_return": ("Return", "pct"),
    "buy_hold_return": ("Buy & hold return", "pct"),
    "annual_return": ("Return (annual)", "pct"),
    "cagr": ("CAGR (calendar)", "pct"),
    "annual_volatility": ("Volatility (annual)", "pct"),
    "sharpe": ("Sharpe ratio", "ratio"),
    "sortino": ("Sortino ratio", "ratio"),
    "calmar": ("Calmar ratio", "ratio"),
    "max_drawdown": ("Max drawdown", "pct"),
    "avg_drawdown": ("Avg drawdown", "pct"),
    "max_drawdown_duration_days": ("Max drawdown duration", "days"),
    "avg_drawdown_duration_days": ("Avg drawdown duration", "days"),
    "drawdown_periods": ("Drawdown periods", "count"),
    "trade_count": ("Trades", "count"),
    "win_rate": ("Win rate", "pct"),
    "best_trade": ("Best trade", "pct"),
    "worst_trade": ("Worst trade", "pct"),
    "avg_trade": ("Avg trade", "pct"),
    "max_trade_duration_days": ("Max trade duration", "days"),
    "avg_trade_duration_days": ("Avg trade duration", "days"),
    "profit_factor": ("Profit factor", "ratio"),
    "expectancy": ("Expectancy (net P&L per trade)", "money"),
    "sqn": ("SQN", "ratio"),
    "ambiguous_exits": ("Ambiguous exits (stop & target in one bar)", "count"),
    "pnl_intrabar_low": ("P&L, least favourable intrabar ordering", "money"),
    "pnl_intrabar_high": ("P&L, most favourable intrabar ordering", "money"),
    "verdicts_by_reason": ("Verdicts by reason", "reasons"),
}


def format_stat(key: str, value: Any) -> str:
    """One figure as a person reads it: 5.00%, 1,234.50, 2d 03:15, 2024-01-02 14:30 UTC."""
    kind = STAT_LABELS.get(key, (key, "ratio"))[1]
    if kind == "reasons":
        return ", ".join(f"{k} {v:,}" for k, v in value.items()) or "none"
    if kind == "ts":
        from datetime import UTC, datetime

        return datetime.fromtimestamp(int(value) // 10**9, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    value = float(value)
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if kind == "pct":
        return f"{value:.2%}"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "count":
        return f"{value:,.0f}"
    if kind == "days":
        return format_days(value)
    return f"{value:.2f}"


def format_days(days: float) -> str:
    """A duration in days as ``3d 04:05:00`` (whole seconds)."""
    secs = round(days * 86_400)
    d, rest = divmod(secs, 86_400)
    h, rest = divmod(rest, 3_600)
    m, s = divmod(rest, 60)
    return f"{d}d {h:02d}:{m:02d}:{s:02d}"
