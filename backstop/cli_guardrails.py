"""``backstop sweep --guardrails``: sweep risk-profile keys over incidents and a backtest.

Kept apart from ``backstop.cli`` (which parses the arguments and dispatches here) so that
file stays small; see ``backstop.runners.guardrails`` for what a row means.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from backstop.errors import ConfigError


def add_arguments(sw: argparse.ArgumentParser) -> None:
    """The guardrail sweep's own options on the ``sweep`` sub-command."""
    sw.add_argument(
        "--guardrails",
        action="store_true",
        help="sweep risk-profile keys (--risk-grid) over incidents and a backtest instead",
    )
    sw.add_argument(
        "--risk-grid",
        action="append",
        metavar="KEY=a,b,c",
        help="with --guardrails: risk key and its values ('off': a limit left off)",
    )
    sw.add_argument(
        "--incidents",
        action="append",
        metavar="PATH",
        help="with --guardrails: an incident folder, or a folder of them (default: replays)",
    )


def cmd_guardrail_sweep(args: argparse.Namespace) -> int:
    """Run the guardrail sweep, write one DuckDB file, print the table (or one JSON object)."""
    from backstop.cli_args import config_values, jsonable, key_values
    from backstop.data import SAMPLE_BARS_PATH
    from backstop.engine.config import BacktestConfig
    from backstop.engine.profile import RiskProfile
    from backstop.runners.guardrails import (
        best_guardrails,
        guardrail_sweep,
        incident_paths,
        parse_risk_grid,
    )
    from backstop.runners.sweep_io import sweep_id, write_results

    for flag, given in (("--param", args.param), ("--constraint", args.constraint)):
        if given:
            raise ConfigError(flag, "does not apply to --guardrails (sweep risk keys: --risk-grid)")
    if args.instruments:  # refused, not ignored: its incidents and backtest would not see it
        raise ConfigError("--instruments", "does not apply to --guardrails yet")
    grid = parse_risk_grid(args.risk_grid or [])
    incidents = incident_paths(args.incidents or ["replays"])
    config = BacktestConfig.from_dict(
        config_values(key_values(args.set or [], "--set")), source="--set"
    )
    profile = RiskProfile.load(args.profile or "post-incident")
    data = Path(args.data) if args.data else SAMPLE_BARS_PATH
    table = guardrail_sweep(
        incidents, data, risk=grid, profile=profile, strategy=args.strategy, config=config
    )
    best = best_guardrails(table)
    extra = f"{config.content_hash()}|{profile.content_hash()}|{[str(p) for p in incidents]}"
    name = sweep_id(str(data), f"guardrails:{args.strategy}", grid, extra)
    out = Path(args.out) if args.out else Path("runs") / f"guardrails-{name}.duckdb"
    meta = {
        "kind": "guardrails",
        "strategy": args.strategy,
        "data": str(data) if args.data else "bundled sample (synthetic)",
        "risk_grid": grid,
        "profile": profile.name,
        "profile_hash": profile.content_hash(),
        "incidents": [p.name for p in incidents],
        "config": config.content_hash(),
    }
    write_results(out, table, best, meta, force=args.force or not args.out)
    if args.json:
        payload = {"results": str(out), "combinations": table.height, "best": best}
        print(json.dumps(jsonable(payload), sort_keys=True))
        return 0
    _print_table(table, list(grid), best, out)
    return 0


def _print_table(table: Any, keys: list[str], best: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    shown = [*keys, "incidents_blocked", "backtest_pnl", "backtest_cost", "backtest_refused"]
    view = Table(title=f"backstop guardrail sweep: {table.height} combinations")
    for col in shown:
        view.add_column(col, justify="right")
    for row in table.iter_rows(named=True):
        cells = [row[c] for c in shown]
        cells[len(keys)] = f"{row['incidents_blocked']}/{row['incidents_total']}"
        view.add_row(*(_cell(c) for c in cells))
    console = Console()
    console.print(view)
    chosen = {k: best[k] for k in keys}
    console.print(
        f"blocks {best['incidents_blocked']}/{best['incidents_total']} incidents at the least "
        f"cost: {chosen} (backtest P&L {best['backtest_pnl']:,.2f}); all rows in {out}"
    )


def _cell(value: Any) -> str:
    if value is None:
        return "off"
    if isinstance(value, float):
        return f"{value:,.2f}" if math.isfinite(value) else str(value)
    return str(value)
