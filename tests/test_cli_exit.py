"""The ``backstop`` program's exit: the interpreter is not torn down, but everything a normal
exit does that results depend on still happens (output, exit handlers, working threads)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# A strategy (the SMA cross, written with the helper) that also leaves work for the exit:
# an atexit handler and a non-daemon thread that finishes after the command returns.
STRATEGY = """
import atexit
import threading
import time
from pathlib import Path

import polars as pl
from backstop.strategies import crossover_intents

OUT = Path(__file__).with_name("{name}")


def _late_write():
    time.sleep(0.3)
    OUT.with_suffix(".thread").write_text("done")


def sma_lines(bars, fast=5, slow=20):
    atexit.register(lambda: OUT.with_suffix(".atexit").write_text("ran"))
    if {thread}:
        threading.Thread(target=_late_write, daemon=False).start()
    line = lambda n: pl.col("close").rolling_mean(n).over("symbol")
    return crossover_intents(bars, line(fast), line(slow), stop_pct=0.01, qty=100)
"""


def _program(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backstop.cli", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _strategy(tmp_path: Path, thread: bool) -> Path:
    path = tmp_path / "mine.py"
    path.write_text(STRATEGY.format(name="marker", thread=thread))
    return path


def test_exit_handlers_run_and_the_output_is_whole(tmp_path: Path) -> None:
    path = _strategy(tmp_path, thread=False)
    done = _program(
        tmp_path, "backtest", "--strategy", f"{path}:sma_lines", "--json", "--journal", "j"
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)  # one whole JSON object, flushed before the exit
    assert payload["strategy"] == "sma_lines" and payload["round_trips"] > 0
    assert (tmp_path / "marker.atexit").read_text() == "ran"


def test_a_thread_still_working_is_waited_for(tmp_path: Path) -> None:
    path = _strategy(tmp_path, thread=True)
    done = _program(
        tmp_path, "backtest", "--strategy", f"{path}:sma_lines", "--json", "--journal", "j"
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "marker.thread").read_text() == "done"  # finished 0.3 s after
    assert (tmp_path / "marker.atexit").read_text() == "ran"


def test_exit_codes_are_kept(tmp_path: Path) -> None:
    refused = _program(tmp_path, "backtest", "--data", "missing.parquet", "--journal", "j")
    assert refused.returncode == 2
    assert refused.stderr.startswith("backstop: error: missing.parquet: file not found")
    bad_flag = _program(tmp_path, "backtest", "--no-such-flag")
    assert bad_flag.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in bad_flag.stderr
