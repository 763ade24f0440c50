"""A sweep worker: ``python -m backstop.runners.worker``, fed by ``backstop.runners.pool``.

It reads from stdin one job (strategy, config, profile, instruments, base parameters and the
path of the bars' Arrow IPC file), then combinations one at a time, and writes one reply per
combination to stdout: ``("ok", index, stats)``, ``("error", index, message)`` for a
``BackstopError`` (bad input), or ``("bug", index, traceback)``. Messages are pickles;
each reply is preceded by its length (8 bytes, little-endian).
Anything else the run prints goes to stderr, so stdout carries replies only.
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback


def main() -> int:
    """Serve combinations until stdin closes."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints go to stderr, never into the replies
    import polars as pl

    from backstop.engine.prepare import PreparedBars
    from backstop.errors import BackstopError
    from backstop.runners.sweep import run_one

    requests = sys.stdin.buffer
    job = pickle.load(requests)
    job["prepared"] = PreparedBars.of(pl.read_ipc(job.pop("bars_path")))
    while True:
        try:
            index, combo = pickle.load(requests)
        except EOFError:
            return 0
        try:
            reply: tuple = ("ok", index, run_one(job, combo))
        except BackstopError as exc:
            reply = ("error", index, str(exc))
        except Exception:
            reply = ("bug", index, traceback.format_exc())
        data = pickle.dumps(reply)
        replies.write(len(data).to_bytes(8, "little") + data)  # framed: see pool._read
        replies.flush()


if __name__ == "__main__":
    raise SystemExit(main())
