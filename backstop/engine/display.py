"""How a result shows itself: a few lines in a terminal, a small table in Jupyter.

Never the arrays: a notebook that ends a cell with ``result`` must stay readable and fast,
whatever the size of the run.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from backstop.engine.stats import STAT_LABELS, format_stat

if TYPE_CHECKING:
    from backstop.engine.result import BacktestResult

# The figures the short summary shows, in order (the rest are in ``.stats``).
HEADLINE = (
    "total_return",
    "buy_hold_return",
    "annual_return",
    "sharpe",
    "sortino",
    "max_drawdown",
    "trade_count",
    "win_rate",
    "profit_factor",
    "expectancy",
    "exposure",
)


def run_title(result: BacktestResult) -> str:
    """The strategy and its parameters, as ``sma_cross(fast=10, slow=50)``."""
    name = result.strategy_name or result.label or "run"
    if not result.params:
        return name
    args = ", ".join(f"{k}={v}" for k, v in sorted(result.params.items()))
    return f"{name}({args})"


def _period(stats: dict[str, Any]) -> str:
    if "start_ts" not in stats:
        return "no bars"
    start = format_stat("start_ts", stats["start_ts"])
    end = format_stat("end_ts", stats["end_ts"])
    return f"{start} .. {end} ({format_stat('duration_days', stats['duration_days'])})"


def result_text(result: BacktestResult) -> str:
    """A few lines: what ran, over what, and the headline numbers."""
    s = result.stats
    summary = result.summary()
    head = ", ".join(
        f"{STAT_LABELS[k][0].lower()} {format_stat(k, s[k])}" for k in HEADLINE[:6] if k in s
    )
    lines = [
        f"BacktestResult {result.run_id}: {run_title(result)}, profile {result.profile.name}",
        f"  {result.arrays.n:,} bars, {len(result.arrays.symbols)} symbols, {_period(s)}",
        f"  {summary['round_trips']:,} round trips, net P&L {summary['pnl']:,.2f}; {head}",
        f"  {summary['signals']:,} signals, {summary['approved']:,} approved; verdicts by "
        f"reason: {format_stat('verdicts_by_reason', summary['verdicts_by_reason'])}; "
        f"{summary['ambiguous_round_trips']:,} ambiguous exits",
        "  .stats .trades .orders .fills .verdicts .equity .ambiguity() .plot()",
    ]
    info = result.data_info
    if info:
        lines.insert(2, f"  symbol {info['symbol']}; times {info['timezone']}")
    return "\n".join(lines)


def result_html(result: BacktestResult) -> str:
    """A compact HTML table for Jupyter (``_repr_html_``)."""
    s = result.stats
    summary = result.summary()
    esc = html.escape
    rows = [
        ("Period", _period(s)),
        ("Bars", f"{result.arrays.n:,} ({len(result.arrays.symbols)} symbols)"),
        ("Signals / approved", f"{summary['signals']:,} / {summary['approved']:,}"),
        ("Net P&L (closed trades)", f"{summary['pnl']:,.2f}"),
    ]
    if result.data_info:
        rows += [("Symbol", result.data_info["symbol"]), ("Times", result.data_info["timezone"])]
        rows += [("Data note", note) for note in result.data_info["data_notes"]]
    rows += [(STAT_LABELS[k][0], format_stat(k, s[k])) for k in HEADLINE if k in s]
    rows += [
        (STAT_LABELS[k][0], format_stat(k, s[k]))
        for k in ("ambiguous_exits", "pnl_intrabar_low", "pnl_intrabar_high", "verdicts_by_reason")
        if k in s
    ]
    body = "".join(
        f"<tr><th style='text-align:left'>{esc(k)}</th><td style='text-align:right'>{esc(v)}</td>"
        "</tr>"
        for k, v in rows
    )
    title = f"BacktestResult {result.run_id}: {run_title(result)}, profile {result.profile.name}"
    return (
        f"<div class='backstop-result'><b>{esc(title)}</b><table>{body}</table>"
        "<small>.stats (every figure) .trades .orders .fills .verdicts .equity .ambiguity() "
        ".plot()</small></div>"
    )
