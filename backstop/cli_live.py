"""The live runner's sub-commands: ``backstop kill`` and ``backstop readiness``.

``register(sub)`` adds them to the ``backstop`` parser (``cli.py`` calls it once); the
runner's own command (``backstop paper``) is registered here too when it lands, so the
live commands live in one file.
"""

from __future__ import annotations

import argparse
from typing import Any


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


def register(sub: Any) -> None:
    """Add ``kill`` to the sub-command parsers ``sub``."""
    kill = sub.add_parser("kill", help="ask a live runner to kill-switch (cancel, flatten, halt)")
    kill.add_argument("run_dir", metavar="RUN_DIR", help="the runner's run directory")
    kill.add_argument("--reason", metavar="TEXT", help="why (one line; kept in the request)")
    kill.set_defaults(func=cmd_kill)
