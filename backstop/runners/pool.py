"""Run sweep combinations on worker processes, one per core by default.

Workers are fresh interpreters (``python -m backstop.runners.worker``), not forks: a fork of
a process whose polars thread pool has run can deadlock, and spawn-style pools re-run the
caller's script in every worker. The bars reach each worker once, through one Parquet file
written for the whole sweep; only the small combinations travel per task. Each worker gets
its next combination when it finishes one; replies are put back in grid order.
"""

from __future__ import annotations

import os
import pickle
import selectors
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import backstop
from backstop.errors import BackstopError

Tick = Callable[[], None]


def _spawn() -> subprocess.Popen:
    root = str(Path(backstop.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return subprocess.Popen(
        [sys.executable, "-m", "backstop.runners.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )


def _send(proc: subprocess.Popen, message: Any) -> None:
    pickle.dump(message, proc.stdin)  # type: ignore[arg-type]  (Popen(stdin=PIPE))
    proc.stdin.flush()  # type: ignore[union-attr]


def run_pool(
    job: dict[str, Any],
    bars: Any,
    combos: list[dict[str, Any]],
    processes: int,
    tick: Tick,
) -> list[dict[str, Any]]:
    """Each combination's stats, in the order of ``combos``."""
    results: list[Any] = [None] * len(combos)
    with tempfile.TemporaryDirectory(prefix="backstop-sweep-") as tmp:
        path = Path(tmp) / "bars.parquet"
        bars.write_parquet(path)
        procs = [_spawn() for _ in range(processes)]
        sel = selectors.DefaultSelector()
        done = False
        try:
            todo = iter(enumerate(combos))
            busy = 0
            for proc in procs:
                _send(proc, job | {"bars_path": str(path)})
                task = next(todo, None)
                if task is not None:
                    _send(proc, task)
                    busy += 1
                    sel.register(proc.stdout, selectors.EVENT_READ, proc)
            while busy:
                for key, _ in sel.select():
                    proc = key.data
                    try:
                        kind, index, payload = pickle.load(proc.stdout)
                    except EOFError:
                        code = proc.wait()
                        raise RuntimeError(
                            f"sweep worker exited unexpectedly (code {code})"
                        ) from None
                    busy -= 1
                    if kind == "error":
                        raise BackstopError(f"{combos[index]}: {payload}")
                    if kind == "bug":
                        raise RuntimeError(f"sweep worker failed on {combos[index]}:\n{payload}")
                    results[index] = payload
                    tick()
                    task = next(todo, None)
                    if task is None:
                        sel.unregister(proc.stdout)
                    else:
                        _send(proc, task)
                        busy += 1
            done = True
        finally:
            sel.close()
            for proc in procs:
                if not done:
                    proc.kill()  # a failed sweep does not wait for runs nobody will read
                proc.stdin.close()  # type: ignore[union-attr]  (EOF: the worker exits)
            for proc in procs:
                proc.wait()
                proc.stdout.close()  # type: ignore[union-attr]
    return results
