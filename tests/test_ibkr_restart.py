"""Restart safety on IB: ``backstop paper --broker ibkr`` killed with SIGKILL at 32 points of
a session against the fake TWS gateway (in this process) and restarted each time.

The strategy is seed 001's K3 (sweep) on MES and MNQ bars: many short bracketed trades whose
stop and target are prices, so each entry goes out as one native bracket (the parent and
its take-profit with ``transmit=False``, then the stop with ``transmit=True``). The first
life dies between the parent and its last child: the fake calls back as each order arrives
and the test kills the runner the moment the first stop leg reaches the gateway. The
others die at random instants after the runner made progress. Before one life the gateway
restarts and reissues order ids from 1.
Afterwards the fake holds no order twice (counted by orderRef, backstop's client id) and
exactly the uninterrupted run's orders, every open position is covered by working
protective stops, and the journal's trades equal the uninterrupted run's.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import polars as pl
from kill_kit import child_env, wait_for_progress
from test_ibkr_parity import mes_bars

from backstop.engine.journal import read_table
from backstop.runners.live.runner import JOURNAL, STATE
from backstop.testing.fake_ibkr import FakeIBKR

BARS = 150
KILLS = 32
KILL = signal.SIGKILL
RESTART_AT = 5  # the gateway restarts (ids reissued from 1) before this life
IDS = ("trade_cycle_id", "client_order_id", "run_id")
OHLC = ("open", "high", "low", "close")


def _plain(ref: str) -> str:
    """A client id without its namespace (each run directory has its own)."""
    return ref.split("-", 2)[2]


def two_futures(stamps: int) -> pl.DataFrame:
    """MES (the sample's SYN000 scaled) and MNQ (SYN001 scaled the same way)."""
    import backstop

    mes = mes_bars(stamps)
    first = mes["ts"].unique().sort()
    bars = backstop.sample_bars().filter(
        pl.col("ts").is_in(first.implode()) & (pl.col("symbol") == "SYN001")
    )
    scaled = [((pl.col(c) * 150 / 0.25).round() * 0.25).alias(c) for c in OHLC]
    mnq = bars.with_columns(scaled).with_columns(symbol=pl.lit("MNQ"))
    return pl.concat([mes, mnq]).sort("ts", "symbol")


def _paper(fake: FakeIBKR, run_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "backstop.cli", "paper", "--broker", "ibkr", "--host",
        "127.0.0.1", "--port", str(fake.port), "--client-id", "5", "--fake-url",
        fake.control_url, "--symbols", "MES,MNQ", "--strategy", "k3_sweep", "--param",
        "tick=0.25", "--journal", str(run_dir),
    ]  # fmt: skip


def _trades(run_dir: Path) -> pl.DataFrame:
    frame = read_table(run_dir / JOURNAL, "trades")
    return frame.drop([c for c in IDS if c in frame.columns])


def test_sigkilled_ib_runner_restarts_without_duplicates_or_lost_trades(tmp_path: Path) -> None:
    bars = two_futures(BARS)
    with FakeIBKR(bars) as fake:
        done = subprocess.run(
            _paper(fake, tmp_path / "clean"), env=child_env(), capture_output=True, timeout=300
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        clean_refs = sorted(_plain(o["order_ref"]) for o in fake.orders)
    expected = _trades(tmp_path / "clean")
    assert expected.height >= 3
    assert any(o.endswith("-SL-1") for o in clean_refs)  # brackets: entries with stops

    rng = random.Random(16)
    run_dir = tmp_path / "killed"
    kills, leg_kills, restarts = 0, 0, 0
    with FakeIBKR(bars) as fake:
        for life in range(KILLS + 1):  # bounded: KILLS lives die, the last one finishes
            if life == RESTART_AT:
                fake.restart(reissue_from=1)
                restarts += 1
            child = subprocess.Popen(
                _paper(fake, run_dir), env=child_env(), stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            if kills == KILLS:
                child.wait(timeout=300)
            elif life == 0:  # die between an entry's stop leg and its take-profit
                fake.on_place(lambda ref, _, c=child: "-SL-" in ref and c.send_signal(KILL))
                child.wait(timeout=120)
                fake.on_place(None)
                leg_kills += child.returncode == -KILL
            else:
                wait_for_progress(run_dir / STATE, child)  # this life got going ...
                time.sleep(rng.uniform(0.0, 0.1))  # ... then it dies at a random instant
            if child.poll() is not None and child.returncode != -KILL:
                assert child.returncode == 0, child.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
                break
            child.send_signal(KILL)
            child.wait(timeout=30)
            kills += 1
        refs = [o["order_ref"] for o in fake.orders]
        assert [r for r, n in Counter(refs).items() if n > 1] == []  # none placed twice
        assert sorted(_plain(r) for r in refs) == clean_refs
        for symbol in ("MES", "MNQ"):  # every open position covered by working stops
            qty = fake.position(symbol)[0]
            if qty:
                cover = sum(
                    o["qty"] - o["filled"]
                    for o in fake.orders
                    if o["symbol"] == symbol
                    and o["status"] in ("Submitted", "PreSubmitted")
                    and o["action"] == ("SELL" if qty > 0 else "BUY")
                    and o["type"] == "STP"
                )
                assert cover >= abs(qty), (symbol, qty, cover)
        assert fake.bugs == []
    assert (leg_kills, restarts) == (1, 1)
    assert kills >= 30, kills
    got = _trades(run_dir)
    differ = [c for c in expected.columns if not got[c].equals(expected[c])]
    assert got.equals(expected), differ
