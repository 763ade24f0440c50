"""The ``backstop backtest`` summary table (rich) printed when ``--json`` is not given."""

from __future__ import annotations

import math
from typing import Any


def few_symbols(names: list[str], shown: int = 3) -> str:
    """Name a few symbols, not a hundred: ``SYN000, SYN001, SYN002, ... (100 symbols)``."""
    if len(names) <= shown + 1:
        return ", ".join(names)
    return f"{', '.join(names[:shown])}, ... ({len(names)} symbols)"


def print_summary(p: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    title = f"backstop backtest {p['run_id']} ({p['strategy']}, profile {p['profile']})"
    table = Table(title=title, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    s = p["stats"]
    rows = [
        ("data", f"{p['data']} ({p['bars']:,} bars, {p['symbols']} symbols)"),
        ("symbol", p["symbol"]),
        ("timezone", p["timezone"]),
        *(("data note", note) for note in p["data_notes"]),
        ("signals in / approved", f"{p['signals']:,} / {p['approved']:,}"),
        ("orders out / fills", f"{p['orders']:,} / {p['fills']:,}"),
        ("round trips", f"{p['round_trips']:,}"),
        ("realized P&L (net)", f"{p['pnl']:,.2f}"),
        ("total return", f"{s.get('total_return', 0.0):.2%}"),
        ("max drawdown", f"{s.get('max_drawdown', 0.0):.2%}"),
        ("sharpe / sortino", f"{s.get('sharpe', math.nan):.2f} / {s.get('sortino', math.nan):.2f}"),
        (
            "win rate / profit factor",
            f"{s.get('win_rate', math.nan):.1%} / {s.get('profit_factor', math.nan):.2f}",
        ),
        (
            "ambiguous exits (stop & target in one bar)",
            f"{p['ambiguous_round_trips']:,}  P&L range {p['pnl_range_intrabar'][0]:,.2f} .. "
            f"{p['pnl_range_intrabar'][1]:,.2f}",
        ),
        ("run seconds", f"{p['run_seconds']:.3f}"),
        ("journal", p["journal"]),
    ]
    for key, value in rows:
        table.add_row(key, value)
    refused = p["verdicts_by_reason"]
    if refused:
        table.add_row("verdicts by reason", ", ".join(f"{k} {v:,}" for k, v in refused.items()))
    if p["kill_switch_trips"]:
        table.add_row("kill switch trips", f"{p['kill_switch_trips']:,}")
    if p["unrounded_symbols"]:
        table.add_row("no tick size known (prices unrounded)", few_symbols(p["unrounded_symbols"]))
    for name, s in p["order_share"].items():
        table.add_row(
            f"signals -> orders ({name})", f"{s['signals']:,} -> {s['orders']:,} ({s['share']:.0%})"
        )
    console.print(table)
    for warning in p["warnings"]:
        console.print(f"[bold yellow]WARNING[/]: {warning}", soft_wrap=True)
    for finding in p["findings"]:
        if finding == "LOW_ORDER_SHARE":
            low = [f"{k} {v['share']:.0%}" for k, v in p["order_share"].items()]
            console.print(
                f"[bold red]FINDING {finding}[/]: share of signals that became orders "
                f"({', '.join(low)}) is below checks.min_order_share {p['min_order_share']:.0%}; "
                "see verdicts by reason.",
                soft_wrap=True,
            )
            continue
        console.print(
            f"[bold red]FINDING {finding}[/]: {p['signals']:,} signals in, "
            f"{p['orders']:,} orders out. Nothing was traded; see verdicts by reason."
        )
