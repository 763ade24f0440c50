"""The ``backstop`` command.

Errors a user can fix (bad arguments, bad data, bad config) are one line on stderr and exit
code 2; anything else is a bug and keeps its traceback. Output piped into a reader that stops
early (``| head``) ends quietly with exit code 141, as a shell reports a SIGPIPE.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

from backstop import cli_data, cli_live, quiet_imports
from backstop.cli_args import (
    INSTRUMENTS_HELP,
    config_values,
    instruments_arg,
    jsonable,
    key_values,
    learning_arg,
    save_learning,
)
from backstop.cli_research import cmd_report, cmd_sweep
from backstop.cli_summary import print_summary
from backstop.errors import BackstopError, ConfigError

PROGRESS_MIN_BARS = 2_000_000  # runs this large take over a second: show a progress bar


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"backstop: error: {message}\n")
        raise SystemExit(2)


def cmd_backtest(args: argparse.Namespace) -> int:
    """Run a strategy over bars, journal the run, print a summary (or one JSON object)."""
    reading = _start_reading(args.data)  # before the engine's imports, which it overlaps
    with quiet_imports():
        from backstop.data import SAMPLE_BARS_PATH
        from backstop.engine.config import BacktestConfig
        from backstop.engine.journal import write_journal
        from backstop.engine.prepare import prepare_checked
        from backstop.engine.profile import RiskProfile, parse_setting
        from backstop.runners.bars_in import load_checked

    data = args.data or SAMPLE_BARS_PATH
    params = key_values(args.param or [], "--param")
    config = BacktestConfig.from_dict(
        config_values(key_values(args.set or [], "--set")), source="--set"
    )
    profile = RiskProfile.load(args.profile)
    instruments = instruments_arg(args.instruments)
    learning = learning_arg(args.learning_in)
    if args.risk:
        settings = [parse_setting(item) for item in args.risk]
        keys = [key for key, _ in settings]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            raise ConfigError(twice[0], "given twice in --risk")
        profile = profile.with_settings(dict(settings))
    if args.signals and args.param:
        raise ConfigError("--param", "strategy parameters do not apply to --signals")
    journal_arg = _journal_arg(args.journal)
    t0 = time.perf_counter()
    checked, info = load_checked(
        data, symbol=args.symbol, tz=args.tz, names=("--symbol", "--tz"), prefetched=reading
    )
    # validated once, here: the strategy and the run take the prepared bars as they are
    bars = prepare_checked(checked, str(data))
    load_seconds = time.perf_counter() - t0
    if args.signals:
        result = _run_signals(bars, Path(args.signals), config, profile, instruments, learning)
    else:
        result = _run_strategy(bars, args, config, profile, params, instruments, learning)
    result.data_info = info.as_dict()  # as the file was read (the facade saw a frame)
    result.tz = args.tz  # the zone its frames show times in (the facade saw prepared bars)
    journal_file = journal_arg or Path("runs") / result.run_id / "journal.duckdb"
    t1 = time.perf_counter()
    journal = write_journal(result, journal_file, force=args.force)
    if args.learning_out:
        save_learning(result, args.learning_out)
    journal_seconds = time.perf_counter() - t1
    summary = result.summary()
    stats = result.stats
    payload = {
        **summary,
        "data": "bundled sample (synthetic)" if not args.data else str(data),
        **info.as_dict(),
        "strategy": result.strategy_name,
        "params": result.params,
        "run_seconds": round(result.run_seconds, 6),
        "load_seconds": round(load_seconds, 6),
        "journal_seconds": round(journal_seconds, 6),
        "journal": str(journal),
        "stats": stats,
    }
    failed = bool(args.check and summary["findings"])
    if args.json:
        print(json.dumps(jsonable(payload), sort_keys=True))
    else:
        print_summary(payload)
    if failed:
        sys.stderr.write(f"backstop: check failed: {', '.join(summary['findings'])}\n")
    return 1 if failed else 0


def _start_reading(data: str | None) -> tuple[Path, Future[Any]] | None:
    """Start reading ``--data`` on a thread when it names one Parquet file (no glob), before
    the engine is imported.

    Importing numba, DuckDB and the engine takes ~0.3 s and reading W's Parquet file ~0.4 s;
    polars reads without the GIL, so the two overlap on a second core. ``load_checked``
    takes the frame after its own checks of the path, and words a failed read as its own.
    """
    if not data or set("*?[") & set(data):
        return None
    path = Path(data)
    if path.suffix.lower() not in (".parquet", ".pq") or not path.is_file():
        return None
    import polars as pl

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backstop-read")
    try:
        return path, pool.submit(pl.read_parquet, path)
    finally:
        pool.shutdown(wait=False)  # the thread ends with the read


def _journal_arg(value: str | None) -> Path | None:
    """The journal file ``--journal`` names: a folder (journal.duckdb inside it) or a file
    ending in .duckdb; anything else that exists already is refused before the run."""
    if not value:
        return None
    path = Path(value)
    if path.suffix == ".duckdb" and not path.is_dir():
        return path
    if path.exists() and not path.is_dir():
        raise ConfigError(
            "--journal", f"{path} is a file, not a folder (give a folder or a .duckdb file)"
        )
    return path / "journal.duckdb"


def _run_signals(
    bars: Any, path: Path, config: Any, profile: Any, instruments: Any, learning: Any
) -> Any:
    """External signals (CSV/JSONL) through the pipeline instead of a strategy."""
    from backstop.brokers.sim.backtest import run_backtest
    from backstop.strategies.external import read_signals

    result = run_backtest(
        bars,
        read_signals(path),
        config,
        instruments=instruments,
        profile=profile,
        label=f"signals:{path.name}",
        learning=learning,
    )
    result.strategy_name = f"signals:{path.name}"
    return result


def _run_strategy(
    bars: Any,
    args: argparse.Namespace,
    config: Any,
    profile: Any,
    params: Any,
    instruments: Any,
    learning: Any,
):
    """A registered strategy over the bars, with a progress bar on long runs."""
    from backstop.runners.backtest import Backtest

    bt = Backtest(
        bars,
        args.strategy,
        config=config,
        profile=profile,
        instruments=instruments,
        learning=learning,
        **params,
    )
    if bars.bars.height >= PROGRESS_MIN_BARS and not args.json:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("backtest"),
            BarColumn(),
            TextColumn("{task.completed:,} bars"),
            TimeElapsedColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task("run", total=bars.bars.height)
            return bt.run(progress=lambda done, total: bar.update(task, completed=done))
    return bt.run()


def cmd_replay(args: argparse.Namespace) -> int:
    """Rebuild an incident from its logs and judge every order with today's guardrails."""
    from backstop.replay.report import (
        check_plot_path,
        plot_timeline,
        render_json,
        render_markdown,
        render_text,
    )
    from backstop.runners.replay import replay

    if args.plot:
        check_plot_path(args.plot)
    mode = "strict" if args.strict else "tolerant" if args.tolerant else "safe"
    run = replay(args.path, profile=args.profile, mode=mode)
    out = run.outcome
    if args.order_id and args.order_id not in {o["order"] for o in out.orders}:
        raise ConfigError("--order-id", f"no order {args.order_id!r} in this incident")
    render = {"text": render_text, "md": render_markdown, "json": render_json}[args.format]
    print(render(out, args.order_id))
    if args.plot:
        plot_timeline(out, args.plot)
    for failure in run.failures:
        sys.stderr.write(f"backstop: expectation failed: {failure}\n")
    return 1 if run.failures else 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Render one trade cycle of a journal in plain English, from signal to P&L."""
    from backstop.engine.explain import explain_cycle

    print(explain_cycle(Path(args.journal), args.cycle_id))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="backstop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    bt = sub.add_parser("backtest", help="run a strategy over bars (bundled sample by default)")
    bt.add_argument(
        "--data",
        help="bars: a .csv, .parquet or .duckdb file, or a quoted glob of them "
        "(default: bundled sample)",
    )
    bt.add_argument(
        "--symbol", help="symbol of a --data file without a symbol column (default: its name)"
    )
    bt.add_argument(
        "--tz",
        "--data-tz",
        dest="tz",
        metavar="ZONE",
        help="IANA zone of --data times written without one (default: the exchange's, else UTC)",
    )
    bt.add_argument(
        "--strategy",
        default="sma_cross",
        help="registered strategy name, or a function: path/to/file.py:fn or package.module:fn",
    )
    bt.add_argument("--param", action="append", metavar="KEY=VALUE", help="strategy parameter")
    bt.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="backtest option (BacktestConfig), e.g. commission=per_share",
    )
    bt.add_argument(
        "--signals", help="external signals (.csv or .jsonl) instead of a strategy (README)"
    )
    bt.add_argument("--profile", help="risk profile: a preset name or a .toml file")
    bt.add_argument("--instruments", metavar="FILE", help=INSTRUMENTS_HELP)
    bt.add_argument(
        "--learning-in", metavar="FILE", help="restore a previous run's learning state (JSON)"
    )
    bt.add_argument(
        "--learning-out", metavar="FILE", help="write the learning state after the run (JSON)"
    )
    bt.add_argument(
        "--risk", action="append", metavar="SECTION.KEY=VALUE", help="risk profile setting"
    )
    bt.add_argument(
        "--check",
        action="store_true",
        help="exit 1 on a finding (e.g. NO_ORDERS_FROM_SIGNALS: signals in, no orders out)",
    )
    bt.add_argument(
        "--journal",
        help="journal folder, or a .duckdb file (default: runs/<run_id>/journal.duckdb)",
    )
    bt.add_argument(
        "--force",
        action="store_true",
        help="replace a journal that holds a different run (kept and refused otherwise)",
    )
    bt.add_argument("--json", action="store_true", help="print one JSON object")
    bt.set_defaults(func=cmd_backtest)
    rp = sub.add_parser("replay", help="replay an incident through today's guardrails")
    rp.add_argument(
        "path", help="scenario folder (incident.toml), a log file, or a live run's RUN_DIR"
    )
    rp.add_argument("--order-id", help="report only this order")
    rp.add_argument(
        "--profile",
        help="risk profile (default: the scenario's, a live run's own, else post-incident)",
    )
    rp.add_argument("--format", choices=("text", "json", "md"), default="text")
    rp.add_argument("--plot", metavar="FILE.png", help="write the timeline figure")
    how = rp.add_mutually_exclusive_group()
    how.add_argument("--strict", action="store_true", help="fail on the first unreadable line")
    how.add_argument(
        "--tolerant",
        action="store_true",
        help="skip unreadable broker records and order lines too (each one listed in the report)",
    )
    rp.set_defaults(func=cmd_replay)
    ex = sub.add_parser("explain", help="one trade cycle of a journal in plain English")
    ex.add_argument("journal", help="journal file (journal.duckdb) or its run directory")
    ex.add_argument("cycle_id", help="trade_cycle_id (as in the verdicts table)")
    ex.set_defaults(func=cmd_explain)
    sw = sub.add_parser("sweep", help="run a strategy over a parameter grid (every core)")
    sw.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUES",
        help="values to sweep: start:stop[:step] (stop excluded) or a,b,c",
    )
    sw.add_argument(
        "--constraint", action="append", metavar="EXPR", help="e.g. 'fast<slow' (all must hold)"
    )
    sw.add_argument("--maximize", default="sharpe", help="statistic to rank by (default sharpe)")
    sw.add_argument("--data", help="bars file(s) as for backtest (default: bundled sample)")
    sw.add_argument("--symbol", help="symbol of a --data file without a symbol column")
    sw.add_argument("--tz", "--data-tz", dest="tz", metavar="ZONE", help="zone of naive times")
    sw.add_argument("--strategy", default="sma_cross", help="strategy name or file.py:fn")
    sw.add_argument("--set", action="append", metavar="KEY=VALUE", help="backtest option")
    sw.add_argument("--profile", help="risk profile: a preset name or a .toml file")
    sw.add_argument("--instruments", metavar="FILE", help=INSTRUMENTS_HELP)
    sw.add_argument("--processes", type=int, help="worker processes (default: one per core)")
    sw.add_argument(
        "--backend",
        choices=("processes", "ray"),
        default="processes",
        help="processes on this machine (default), or Ray (pip install 'backstop[ray]')",
    )
    sw.add_argument(
        "--address", help="with --backend ray: the cluster (HOST:PORT; default a local Ray)"
    )
    sw.add_argument(
        "--out", help="results file (.duckdb; default runs/sweep-<id>.duckdb, named by inputs)"
    )
    sw.add_argument("--force", action="store_true", help="replace an existing --out file")
    sw.add_argument("--json", action="store_true", help="print one JSON object")
    from backstop.cli_guardrails import add_arguments

    add_arguments(sw)
    sw.set_defaults(func=cmd_sweep)
    rpt = sub.add_parser("report", help="a run's tearsheet (HTML, Markdown) from its journal")
    rpt.add_argument("run", help="run folder (runs/<run_id>) or its journal.duckdb")
    rpt.add_argument("--html", metavar="FILE", help="write the HTML page here")
    rpt.add_argument("--md", metavar="FILE", help="write the Markdown version here")
    rpt.set_defaults(func=cmd_report)
    cli_live.register(sub)  # kill, readiness (and the live runner's commands)
    cli_data.register(sub)  # data fetch
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args))
        sys.stdout.flush()
        return code
    except BackstopError as exc:
        sys.stderr.write(f"backstop: error: {exc}\n")
        return 2
    except BrokenPipeError:
        return _quiet_broken_pipe()


def _quiet_broken_pipe() -> int:
    """The reader of stdout went away (``backstop replay ... | head``): stop without a
    traceback. stdout is pointed at devnull so Python's own flush at exit cannot fail too."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured): nothing to redirect
        pass
    finally:
        os.close(devnull)
    return 141


def program() -> NoReturn:
    """The ``backstop`` executable: ``main``, then an exit that skips tearing the
    interpreter down.

    Finalizing the modules a command loaded (numba, llvmlite, polars, DuckDB) took 0.1-0.17 s
    of every command's exit, after its work was done and printed. Everything a normal exit
    does that a command's results depend on still happens, in the same order: output is
    flushed, and the exit handlers run (``atexit``: ``logging``'s flush, temporary folders,
    a local Ray's shutdown). Only when a thread other than the main one still works (a
    non-daemon thread, which a normal exit would wait for) does the normal exit run instead.
    An error raised by ``main`` ends the process as usual, traceback and all.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = _quiet_broken_pipe()
    if any(t.is_alive() and not t.daemon for t in _other_threads()):
        raise SystemExit(code)
    atexit._run_exitfuncs()  # what the interpreter runs first at exit (CPython and PyPy)
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _other_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t is not threading.main_thread()]


if __name__ == "__main__":
    program()
