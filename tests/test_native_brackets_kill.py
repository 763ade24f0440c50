"""Restart safety with native brackets at Alpaca: ``backstop paper`` whose entries go out as
``bracket`` orders (stop and target prices known at submit) is killed with SIGKILL at random
instants of a session against the fake Alpaca and restarted each time. Afterwards the fake
holds no order twice and exactly as many as the uninterrupted run, every open position is
covered by working stop legs, and the journal's trades equal the uninterrupted run's.

The 32-kill test of ``tests/test_live_paper.py`` covers the legs-on-fill path; this one the
bracket whose legs ride with the entry (a kill after the POST but before the runner saved
its state makes the restarted runner send the same bracket again: Alpaca answers 422
40010001 and the adapter adopts the order and its legs).
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import polars as pl
from kill_kit import alpaca_uncovered, child_env, kill_and_restart

import backstop
from backstop.engine.journal import read_table
from backstop.runners.live.runner import JOURNAL
from backstop.testing.fake_alpaca import FakeAlpaca

BARS = 240
KILLS = 10
STRATEGY = str(Path(__file__).with_name("test_native_brackets_live.py")) + ":priced_crosses"
KEYS = ("fake-key", "fake-secret")


def _paper(url: str, run_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "backstop.cli", "paper", "--broker", "alpaca-fake",
        "--fake-url", url, "--symbols", "SYN000,SYN001,SYN002", "--strategy", STRATEGY,
        "--journal", str(run_dir),
    ]  # fmt: skip


def _trades(run_dir: Path) -> pl.DataFrame:
    frame = read_table(run_dir / JOURNAL, "trades")
    return frame.drop([c for c in ("trade_cycle_id", "run_id") if c in frame.columns])


def test_sigkilled_runner_with_native_brackets_restarts_without_duplicates(
    tmp_path: Path,
) -> None:
    bars = backstop.sample_bars()
    first = bars.get_column("ts").unique().sort().head(BARS)
    bars = bars.filter(pl.col("ts").is_in(first.implode()))
    with FakeAlpaca(bars, keys=KEYS) as fake:
        done = subprocess.run(
            _paper(fake.url, tmp_path / "clean"), env=child_env(), capture_output=True, timeout=300
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        clean = fake.orders()
    assert any(o["order_class"] == "bracket" for o in clean)
    expected = _trades(tmp_path / "clean")
    assert expected.height > 3
    run_dir = tmp_path / "killed"
    with FakeAlpaca(bars, keys=KEYS) as fake:

        def start() -> subprocess.Popen:  # type: ignore[type-arg]
            return subprocess.Popen(
                _paper(fake.url, run_dir), env=child_env(), stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )  # fmt: skip

        kills = kill_and_restart(start, run_dir / "state.ckpt", KILLS, random.Random(11), 0.12)
        orders = fake.orders()
        ids = [o["client_order_id"] for o in orders if o["client_order_id"].startswith("bs-")]
        assert len(ids) == len(set(ids))  # none placed twice
        assert len(orders) == len(clean)  # legs included: no bracket twice, no extra pair
        assert alpaca_uncovered(orders, fake.market.positions) == []  # every position protected
    assert kills == KILLS
    assert _trades(run_dir).equals(expected)
