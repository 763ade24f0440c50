"""The live runner's sub-commands: ``backstop kill`` and ``backstop readiness``.

``register(sub)`` adds them to the ``backstop`` parser (``cli.py`` calls it once); the
runner's own command (``backstop paper``) is registered here too when it lands, so the
live commands live in one file.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

from backstop.errors import ConfigError


def cmd_kill(args: argparse.Namespace) -> int:
    """Write a kill request into a run directory; the runner acts on its next poll."""
    from backstop.runners.live.alerts import iso_ns
    from backstop.runners.live.killswitch import DEFAULT_REASON, KillSwitch, read_run_marker

    marker = read_run_marker(args.run_dir)
    switch = KillSwitch(args.run_dir)
    before = switch.last()
    request = switch.request(args.reason if args.reason is not None else DEFAULT_REASON)
    run = marker.get("run_id", args.run_dir)
    when = iso_ns(request.requested_ns)
    if before is not None and before.pending:
        print(
            f"kill already requested for run {run} at {when} ({request.reason}); "
            "the runner has not acknowledged it yet"
        )
    else:
        print(
            f"kill requested for run {run} at {when} ({request.reason}); the runner cancels "
            "working orders, flattens as its profile says and halts on its next poll"
        )
    return 0


def cmd_readiness(args: argparse.Namespace) -> int:
    """Print the pre-deployment checklist; exit 0 only if no check fails."""
    from backstop.runners.live.readiness import readiness, render

    if not (math.isfinite(args.clock_tolerance) and args.clock_tolerance > 0):
        raise ConfigError("--clock-tolerance", f"must be > 0 seconds, got {args.clock_tolerance}")
    quiet_ib_async()
    checks = readiness(
        args.profile,
        args.broker,
        args.mode,
        env=os.environ,
        incidents=args.incidents,
        tolerance_s=args.clock_tolerance,
        gateway=(args.host, args.port, args.client_id, args.account),
    )
    header = f"readiness: profile {args.profile}, broker {args.broker}, mode {args.mode.upper()}"
    print(render(checks, header))
    return 0 if all(c.passed for c in checks) else 1


def cmd_paper(args: argparse.Namespace) -> int:
    """Run the strategy live against a broker (paper by default) until the bars end, a kill,
    or ``--max-steps``; print the session's summary."""
    import json
    from pathlib import Path

    from backstop.cli_args import jsonable, key_values
    from backstop.runners.live.brokers import BROKERS
    from backstop.runners.live.paper import PaperOptions, run_paper
    from backstop.runners.live.runner import Mode

    quiet_ib_async()
    symbols = None
    if args.symbols:
        symbols = tuple(s.strip() for s in args.symbols.split(",") if s.strip())
    run_dir = Path(args.journal) if args.journal else Path("runs") / f"paper-{args.broker}"
    if not args.journal and BROKERS[args.broker].fake:
        # the in-process fake is a new market each run: each run gets its own folder
        n = 1
        while (Path("runs") / f"paper-{args.broker}-{n}").exists():
            n += 1
        run_dir = Path("runs") / f"paper-{args.broker}-{n}"
    opts = PaperOptions(
        broker=args.broker,
        strategy=args.strategy,
        params=key_values(args.param or [], "--param"),
        symbols=symbols,
        profile=args.profile,
        mode=Mode(args.mode),
        run_dir=run_dir,
        timeframe=args.timeframe,
        bars=args.bars,
        fake_url=args.fake_url,
        max_steps=args.max_steps,
        confirm_live=args.confirm_live,
        alert_webhook=args.alert_webhook,
        host=args.host,
        port=args.port,
        client_id=args.client_id,
        account=args.account,
    )
    on_terminal = sys.stdout.isatty() and not args.json
    summary = (_with_status_line if on_terminal else run_paper)(opts)
    if args.json:
        print(json.dumps(jsonable(summary), sort_keys=True))
    else:
        width = max(len(k) for k in summary)
        for key, value in summary.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _with_status_line(opts: Any) -> dict[str, Any]:
    """Run with a live status line on the terminal (positions, orders, P&L, state)."""
    from rich.console import Console
    from rich.live import Live

    from backstop.runners.live.paper import run_paper
    from backstop.runners.live.status import status_text

    with Live(console=Console(), transient=True, refresh_per_second=4) as live:
        opts.on_step = lambda runner: live.update(status_text(runner.session.status()))
        return run_paper(opts)


def quiet_ib_async() -> None:
    """ib_async logs every gateway message it finds notable (each cancel's whole order,
    error 202) on stderr; the IBKR adapter turns those into events and logs what matters
    under ``backstop.ibkr``, so only ib_async's critical lines are kept."""
    import logging

    logging.getLogger("ib_async").setLevel(logging.CRITICAL)


def _gateway_options(parser: Any) -> None:
    """``--host/--port/--client-id/--account``: where an IB gateway listens (ibkr only)."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="ibkr: TWS / IB Gateway host (127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=4002,
        help="ibkr: API port (IB Gateway paper 4002, live 4001; TWS paper 7497, live 7496)",
    )
    parser.add_argument(
        "--client-id", type=int, default=1, help="ibkr: API client id, >= 1 (default 1)"
    )
    parser.add_argument(
        "--account", default="", help="ibkr: account to trade when the login manages several"
    )


def register(sub: Any) -> None:
    """Add ``paper``, ``kill`` and ``readiness`` to the sub-command parsers ``sub``."""
    paper = sub.add_parser(
        "paper",
        help="trade a strategy live through a broker (alpaca, ibkr, or the keyless "
        "alpaca-fake / ibkr-fake)",
    )
    paper.add_argument(
        "--broker", required=True, choices=("alpaca", "alpaca-fake", "ibkr", "ibkr-fake")
    )
    paper.add_argument(
        "--strategy",
        default="sma_cross",
        help="registered strategy name, or path/to/file.py:fn or package.module:fn",
    )
    paper.add_argument("--param", action="append", metavar="KEY=VALUE", help="strategy parameter")
    paper.add_argument(
        "--symbols", help="comma-separated symbols (the fakes: default every sample symbol)"
    )
    paper.add_argument("--timeframe", default="1Min", help="bar size of the data feed (1Min)")
    paper.add_argument("--profile", help="risk profile: a preset name or a .toml (live: required)")
    paper.add_argument(
        "--mode",
        choices=("observe", "paper", "live"),
        default="paper",
        help="observe: decide and journal, send nothing; paper (default); live: real money",
    )
    paper.add_argument(
        "--confirm-live", action="store_true", help="needed with --mode live (real money)"
    )
    paper.add_argument(
        "--journal",
        metavar="DIR",
        help="run directory (state, journal, kill requests); default runs/paper-BROKER for "
        "alpaca and ibkr (run again with the same directory to resume after a stop or a "
        "crash), a new runs/paper-BROKER-N for each alpaca-fake or ibkr-fake run",
    )
    paper.add_argument(
        "--bars",
        type=int,
        default=390,
        help="the fakes: how many of the sample's bar times the fake plays (default 390)",
    )
    _gateway_options(paper)
    paper.add_argument(
        "--alert-webhook",
        metavar="URL",
        help="also POST every alert as JSON to this URL (failures are logged, never fatal)",
    )
    paper.add_argument("--fake-url", help=argparse.SUPPRESS)  # a fake in another process
    paper.add_argument("--max-steps", type=int, help="stop after this many bar times")
    paper.add_argument("--json", action="store_true", help="the summary as one JSON line")
    paper.set_defaults(func=cmd_paper)
    kill = sub.add_parser("kill", help="ask a live runner to kill-switch (cancel, flatten, halt)")
    kill.add_argument("run_dir", metavar="RUN_DIR", help="the runner's run directory")
    kill.add_argument("--reason", metavar="TEXT", help="why (one line; kept in the request)")
    kill.set_defaults(func=cmd_kill)
    ready = sub.add_parser("readiness", help="the pre-deployment checklist, one line per check")
    ready.add_argument("--profile", required=True, help="risk profile: a preset name or a .toml")
    ready.add_argument("--broker", required=True, choices=("alpaca", "alpaca-fake", "ibkr"))
    _gateway_options(ready)
    ready.add_argument(
        "--mode", choices=("observe", "paper", "live"), default="paper", help="default paper"
    )
    ready.add_argument(
        "--incidents",
        default="replays",
        help="folder of incident folders the profile must block (default: replays)",
    )
    ready.add_argument(
        "--clock-tolerance",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="largest broker-vs-local clock offset that passes (default 2)",
    )
    ready.set_defaults(func=cmd_readiness)
