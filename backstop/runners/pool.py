"""Run sweep combinations on worker processes and the calling process, one per core by default.

Workers are fresh interpreters (``python -m backstop.runners.worker``), not forks: a fork of
a process whose polars thread pool has run can deadlock, and spawn-style pools re-run the
caller's script in every worker. The bars reach each worker once, through one uncompressed
Arrow IPC file written for the whole sweep while the workers start (their imports take
longer than the write), and memory-mapped by each; only the small combinations travel per
task. The calling process runs combinations too (it has the bars already, and starts at once),
between the workers' replies. Each worker holds up to two combinations at a time, so it is
never idle while the caller runs one; replies are put back in grid order.
"""

from __future__ import annotations

import os
import pickle
import selectors
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import backstop
from backstop.errors import BackstopError

Tick = Callable[[], None]
IN_FLIGHT = 2  # combinations a worker holds: one running, one waiting in its pipe


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
    local: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Each combination's stats, in the order of ``combos``.

    With ``local`` (the job with the caller's prepared bars), the calling process is one of
    the ``processes``: it runs combinations itself while the ``processes - 1`` workers start
    (a worker needs a second or more for its imports and the bars) and whenever no reply is
    waiting. Each worker holds up to ``IN_FLIGHT`` combinations, so it never waits for the
    caller to finish one of its own before it gets the next.
    """
    results: list[Any] = [None] * len(combos)
    n_workers = processes - 1 if local is not None else processes
    todo = iter(enumerate(combos))
    left = len(combos)
    with tempfile.TemporaryDirectory(prefix="backstop-sweep-") as tmp:
        path = Path(tmp) / "bars.arrow"
        procs = [_spawn() for _ in range(n_workers)]  # they import while the file is written
        sel = selectors.DefaultSelector()
        held = dict.fromkeys(procs, 0)  # combinations sent to each worker, not yet answered
        inbox = {proc: bytearray() for proc in procs}  # bytes read, not yet a whole reply
        done = False

        def feed(proc: subprocess.Popen[bytes]) -> None:
            while held[proc] < IN_FLIGHT:
                task = next(todo, None)
                if task is None:
                    break
                _send(proc, task)
                held[proc] += 1
            if held[proc] == 0:
                sel.unregister(_pipes(proc)[1])

        try:
            bars.write_ipc(path, compression="uncompressed")
            for proc in procs:
                _send(proc, job | {"bars_path": str(path)})
                sel.register(_pipes(proc)[1], selectors.EVENT_READ, proc)
                feed(proc)
            while left:
                # the caller runs a combination of its own only when no reply is waiting
                wait = 0 if local is not None else None
                ready = sel.select(timeout=wait) if sel.get_map() else []
                for key, _ in ready:
                    proc = key.data
                    for index, payload in _read(proc, inbox[proc], combos):
                        held[proc] -= 1
                        results[index] = payload
                        left -= 1
                        tick()
                    feed(proc)
                if not ready and local is not None:
                    task = next(todo, None)
                    if task is None:
                        local = None  # nothing left to run here: wait for the workers
                        continue
                    index, combo = task
                    results[index] = _run_here(local, combo)
                    left -= 1
                    tick()
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


def _read(
    proc: subprocess.Popen[bytes], inbox: bytearray, combos: list[dict[str, Any]]
) -> list[tuple[int, Any]]:
    """The whole replies a worker has sent so far, as (index, stats); a refusal or a bug is
    raised, naming the run.

    Read from the pipe's descriptor, never through a buffered file: a buffered reader could
    swallow a second reply the selector would then never report, and the sweep would wait
    for it forever. Each reply is framed by its length (``worker``)."""
    chunk = os.read(_pipes(proc)[1].fileno(), 1 << 20)
    if not chunk:
        code = proc.wait()
        raise RuntimeError(f"sweep worker exited unexpectedly (code {code})")
    inbox += chunk
    out = []
    while len(inbox) >= 8:
        size = int.from_bytes(inbox[:8], "little")
        if len(inbox) < 8 + size:
            break
        kind, index, payload = pickle.loads(bytes(inbox[8 : 8 + size]))
        del inbox[: 8 + size]
        if kind == "error":
            raise BackstopError(f"{combos[index]}: {payload}")
        if kind == "bug":
            raise RuntimeError(f"sweep worker failed on {combos[index]}:\n{payload}")
        out.append((index, payload))
    return out


def _run_here(local: dict[str, Any], combo: dict[str, Any]) -> Any:
    """One combination in the calling process, its refusal or bug named as a worker's is."""
    from backstop.runners.sweep import run_one

    try:
        return run_one(local, combo)
    except BackstopError as exc:
        raise BackstopError(f"{combo}: {exc}") from exc
    except Exception as exc:
        raise RuntimeError(f"sweep failed on {combo}:\n{traceback.format_exc()}") from exc
