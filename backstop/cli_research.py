"""``backstop sweep`` and ``backstop report``: the research sub-commands (the parser and the
dispatch stay in ``backstop.cli``; the guardrail sweep is ``backstop.cli_guardrails``)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from backstop.cli_args import config_values, instruments_arg, jsonable, key_values
from backstop.errors import ConfigError


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run a strategy over every combination of a parameter grid; results in one DuckDB file."""
    from backstop.data import SAMPLE_BARS_PATH
    from backstop.engine.config import BacktestConfig
    from backstop.engine.profile import RiskProfile
    from backstop.runners.backtest import Backtest
    from backstop.runners.sweep import best_row, check_objective, sweep
    from backstop.runners.sweep_io import parse_constraints, parse_grid, sweep_id, write_results

    if args.address and args.backend != "ray":
        raise ConfigError("--address", "applies to --backend ray only")
    if args.backend == "ray":
        from backstop.runners.ray_pool import check_reachable, import_ray

        import_ray("--backend")  # before any data is read
        check_reachable(args.address, "--address")
    if args.guardrails or args.risk_grid or args.incidents:
        if args.backend == "ray":
            raise ConfigError(
                "--backend", "the guardrail sweep runs in this process; ray is for --param sweeps"
            )
        from backstop.cli_guardrails import cmd_guardrail_sweep

        return cmd_guardrail_sweep(args)
    if ".py:" in args.strategy and args.backend == "ray":
        raise ConfigError(
            "--backend",
            f"strategy {args.strategy} is loaded from a file, which Ray workers cannot "
            "import: name it package.module:fn, or use --backend processes --processes 1",
        )
    if ".py:" in args.strategy and args.processes != 1:
        raise ConfigError(
            "--processes",
            f"strategy {args.strategy} is loaded from a file, which worker processes cannot "
            "import: pass --processes 1 (or name it package.module:fn)",
        )
    grid = parse_grid(args.param or [])
    check_objective(args.maximize)
    constraint = parse_constraints(args.constraint or [], list(grid))
    config = BacktestConfig.from_dict(
        config_values(key_values(args.set or [], "--set")), source="--set"
    )
    profile = RiskProfile.load(args.profile)
    instruments = instruments_arg(args.instruments)
    from backstop.runners.bars_in import load_data

    data = args.data or SAMPLE_BARS_PATH
    bars, info = load_data(data, symbol=args.symbol, tz=args.tz, names=("--symbol", "--tz"))
    bt = Backtest(bars, args.strategy, config=config, profile=profile, instruments=instruments)
    table = sweep(
        bt,
        constraint=constraint,
        processes=args.processes,
        backend=args.backend,
        address=args.address,
        **grid,
    )
    best = best_row(table, list(grid), args.maximize)
    extra = f"{config.content_hash()}|{profile.content_hash()}|{args.constraint}"
    if instruments:  # another instrument file is another sweep
        extra += f"|{sorted(instruments.items())!r}"
    out = (
        Path(args.out)
        if args.out
        else Path("runs")
        / (f"sweep-{sweep_id(bt.prepared.fingerprint, bt.strategy.name, grid, extra)}.duckdb")
    )
    meta = {
        "strategy": bt.strategy.name,
        "data": str(data) if args.data else "bundled sample (synthetic)",
        "grid": grid,
        "constraints": args.constraint or [],
        "maximize": args.maximize,
        "base_params": bt.params,
        **info.as_dict(),
        "config": config.content_hash(),
        "profile": profile.name,
    }
    write_results(out, table, best, meta, force=args.force or not args.out)
    chosen = {k: best[k] for k in grid}
    if args.json:
        payload = {"results": str(out), "combinations": table.height, "best": best}
        print(json.dumps(jsonable(payload), sort_keys=True))
        return 0
    from rich.console import Console
    from rich.table import Table

    shown = ["run_id", *grid, args.maximize, "total_return", "max_drawdown", "trade_count"]
    shown = list(dict.fromkeys(shown))
    top = table.sort(args.maximize, descending=True, nulls_last=True, maintain_order=True)
    view = Table(title=f"backstop sweep: {table.height} combinations of {bt.strategy.name}")
    for col in shown:
        view.add_column(col, justify="left" if col == "run_id" else "right")
    for row in top.head(10).iter_rows(named=True):
        view.add_row(*(_cell(row[c]) for c in shown))
    console = Console()
    console.print(view)
    console.print(f"best by {args.maximize}: {chosen}; all rows in {out}")
    return 0


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def cmd_report(args: argparse.Namespace) -> int:
    """Write a run's tearsheet (HTML and/or Markdown) from its journal."""
    from backstop.report import write_tearsheet

    for path in write_tearsheet(Path(args.run), html_path=args.html, md_path=args.md):
        print(path)
    return 0
