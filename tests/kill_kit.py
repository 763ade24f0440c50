"""What the SIGKILL restart tests share: a child runner's environment and a bounded wait
until it has made progress worth killing."""

from __future__ import annotations

import os
import subprocess
import time
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
