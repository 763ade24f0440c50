"""What the SIGKILL restart tests share: a child runner's environment and a bounded wait
until it has made progress worth killing."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import backstop

ROOT = Path(backstop.__file__).resolve().parents[1]


def child_env() -> dict[str, str]:
    """The environment of a runner started as a child: this checkout first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def wait_for_progress(state: Path, child: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Until the runner saved its state twice since this life began (once at start-up, once
    after a step that changed something), or exited; bounded."""
    seen = state.stat().st_mtime_ns if state.exists() else 0
    saves = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and child.poll() is None and saves < 2:
        now = state.stat().st_mtime_ns if state.exists() else 0
        if now != seen:
            seen, saves = now, saves + 1
        time.sleep(0.01)


def kill_and_restart(
    start: Callable[[], subprocess.Popen],  # type: ignore[type-arg]
    state: Path,
    kills: int,
    rng: random.Random,
    pause_s: float,
) -> int:
    """Start the runner ``kills + 1`` times: each life but the last is SIGKILLed at a random
    instant (up to ``pause_s``) after it made progress; the last runs to its end, which must
    be exit 0. Returns the kills made (fewer when a life finished the session first)."""
    for done in range(kills + 1):  # bounded: ``kills`` lives die, the next one finishes
        child = start()
        if done == kills:
            child.wait(timeout=300)
        else:
            wait_for_progress(state, child)  # this life got going ...
            time.sleep(rng.uniform(0.0, pause_s))  # ... then it dies at a random instant
        if child.poll() is not None:
            assert child.returncode == 0, child.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            return done
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    raise AssertionError("the runner never finished")


def alpaca_uncovered(orders: list[dict], positions: dict) -> list[tuple[str, float, float]]:
    """(symbol, held, covered) of each open position at the fake Alpaca that its working
    stop orders (on the closing side) do not cover; empty when every one is protected."""
    out = []
    for symbol, pos in positions.items():
        if not pos.qty:
            continue
        cover = sum(
            float(o["qty"]) - float(o["filled_qty"])
            for o in orders
            if o["symbol"] == symbol
            and o["status"] in ("new", "accepted", "held", "partially_filled")
            and o["side"] == ("sell" if pos.qty > 0 else "buy")
            and o["type"] in ("stop", "trailing_stop")
        )
        if cover < abs(pos.qty):
            out.append((symbol, pos.qty, cover))
    return out
