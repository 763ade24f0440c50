"""Run sweep combinations on worker processes, one per core by default.

Workers are fresh interpreters (``python -m backstop.runners.worker``), not forks: a fork of
a process whose polars thread pool has run can deadlock, and spawn-style pools re-run the
caller's script in every worker. The bars reach each worker once, through one uncompressed
Arrow IPC file written for the whole sweep while the workers start (their imports take
longer than the write), and memory-mapped by each; only the small combinations travel per
task. Each worker gets
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
from typing import IO, Any

import backstop
from backstop.errors import BackstopError

Tick = Callable[[], None]


def _spawn() -> subprocess.Popen[bytes]:
    root = str(Path(backstop.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return subprocess.Popen(
        [sys.executable, "-m", "backstop.runners.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )


def _pipes(proc: subprocess.Popen[bytes]) -> tuple[IO[bytes], IO[bytes]]:
    """The worker's stdin and stdout (``_spawn`` always asks for both)."""
    if proc.stdin is None or proc.stdout is None:
        raise RuntimeError("sweep worker started without its pipes")
    return proc.stdin, proc.stdout


def _send(proc: subprocess.Popen[bytes], message: Any) -> None:
    stdin, _ = _pipes(proc)
    pickle.dump(message, stdin)
    stdin.flush()


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
        path = Path(tmp) / "bars.arrow"
        procs = [_spawn() for _ in range(processes)]  # they import while the file is written
        sel = selectors.DefaultSelector()
        done = False
        try:
            bars.write_ipc(path, compression="uncompressed")
            todo = iter(enumerate(combos))
            busy = 0
            for proc in procs:
                _send(proc, job | {"bars_path": str(path)})
                task = next(todo, None)
                if task is not None:
                    _send(proc, task)
                    busy += 1
                    sel.register(_pipes(proc)[1], selectors.EVENT_READ, proc)
            while busy:
                for key, _ in sel.select():
                    proc = key.data
                    try:
                        kind, index, payload = pickle.load(_pipes(proc)[1])
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
                        sel.unregister(_pipes(proc)[1])
                    else:
                        _send(proc, task)
                        busy += 1
            done = True
        finally:
            sel.close()
            for proc in procs:
                if not done:
                    proc.kill()  # a failed sweep does not wait for runs nobody will read
                _pipes(proc)[0].close()  # EOF: the worker exits
            for proc in procs:
                proc.wait()
                _pipes(proc)[1].close()
    return results
