"""``backstop paper --broker alpaca`` with the trade-updates stream, end to end.

The runner is the one a real account gets (``--broker alpaca``: alpaca-py's ``TradingClient``
and ``TradingStream``, no REST re-read after each bar), pointed at the loopback fake Alpaca
through ``APCA_API_BASE_URL`` / ``APCA_API_STREAM_URL``. The fake's market moves one bar
after each runner step (the step hook advances it, then waits, bounded, until the stream has
delivered what that bar made), so the run is deterministic.

- Every fill is heard on the stream: the adapter reports each execution once and counts
  where it heard it first (``fills_heard``): all from the stream, none from a REST read,
  and the fake's request log holds no read of fills (``/v2/account/activities``) in any
  step that booked fills (a timer reconcile's step aside: it reads fills by design). The
  journal then equals that of the REST-driven run (``--broker alpaca-fake``) on the same bars.
- A stream outage (the fake drops the socket and refuses new ones) across two fills: the
  updates sent meanwhile are lost by the stream; after alpaca-py reconnects, the adapter
  re-reads over REST. Each fill the fake made is booked exactly once, the two lost ones from
  REST, the others from the stream.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

import backstop
from backstop.brokers.alpaca.adapter import AlpacaBroker
from backstop.engine.journal import read_table
from backstop.runners.live.paper import FAKE_KEYS, PaperOptions, run_paper
from backstop.runners.live.runner import JOURNAL, LiveRunner, Mode
from backstop.testing.fake_alpaca import FakeAlpaca

BARS = 120
PARAMS = {"fast": 5, "slow": 20}
SYMBOLS = ("SYN000", "SYN001", "SYN002")
FILLS = ("fill", "partial_fill")
WAIT_S = 10.0  # bound on each wait for the stream (a reconnect: alpaca-py's back-off)
IDS = ("trade_cycle_id", "client_order_id", "run_id")


def sample(stamps: int) -> pl.DataFrame:
    bars = backstop.sample_bars()
    first = bars.get_column("ts").unique().sort().head(stamps)
    return bars.filter(pl.col("ts").is_in(first.implode()))


@pytest.fixture
def alpaca_env(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A fake Alpaca, and the environment that points ``--broker alpaca`` at it."""
    with FakeAlpaca(sample(BARS), keys=FAKE_KEYS) as fake:
        monkeypatch.setenv("APCA_API_KEY_ID", FAKE_KEYS[0])
        monkeypatch.setenv("APCA_API_SECRET_KEY", FAKE_KEYS[1])
        monkeypatch.setenv("APCA_API_BASE_URL", fake.url)
        monkeypatch.setenv("APCA_API_STREAM_URL", fake.stream_url)
        yield fake


def fill_events(events) -> list:  # type: ignore[no-untyped-def]
    return [e for e in events if e.event in FILLS]


def wait_until(ok, what: str) -> None:  # type: ignore[no-untyped-def]
    """Until ``ok()``; bounded in time (and in polls)."""
    deadline = time.monotonic() + WAIT_S
    for _ in range(int(WAIT_S / 0.005) + 1):
        if ok():
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.005)
    pytest.fail(f"not in {WAIT_S} s: {what}")


class Market:
    """The step hook: one bar of the fake's market after each runner step, then a bounded
    wait until the stream has delivered every update the fake sent to listeners. With
    ``outage=(a, b)`` the stream is down from after step ``a`` to after step ``b``.

    It keeps, per step: the REST reads of fills (``/v2/account/activities``) made since the
    previous step, the fills booked, and whether a reconcile ran (a reconcile reads fills)."""

    def __init__(self, fake: FakeAlpaca, outage: tuple[int, int] | None = None) -> None:
        self.fake = fake
        self.outage = outage
        self.broker: AlpacaBroker | None = None
        self.steps: list[tuple[int, int, int, bool]] = []
        self._requests = 0
        self._fills = 0
        self._reports = 0

    def __call__(self, runner: LiveRunner) -> None:
        broker = self.broker = runner.broker
        assert isinstance(broker, AlpacaBroker)
        if runner.steps == 1:
            wait_until(lambda: broker.stream_connects >= 1, "the stream's first connection")
        reads = fill_reads(self.fake.requests[self._requests :])
        fills = len(runner.session.driver.fills)
        reconciled = len(runner.reports) > self._reports
        self.steps.append((runner.steps, reads, fills - self._fills, reconciled))
        self._fills, self._reports = fills, len(runner.reports)
        down = self.outage is not None and self.outage[0] <= runner.steps < self.outage[1]
        if self.outage and runner.steps == self.outage[0]:
            self.fake.stream_outage()
        if self.outage and runner.steps == self.outage[1]:
            connects = broker.stream_connects
            self.fake.end_outage()
            wait_until(lambda: broker.stream_connects > connects, "a reconnect after the outage")
        self.fake.advance()
        if not down:
            sent = len(self.fake.events) - len(self.fake.lost_events)
            wait_until(lambda: broker.stream_received >= sent, "the bar's trade updates")
        self._requests = len(self.fake.requests)


def fill_reads(requests: list[tuple[str, str, int]]) -> int:
    return sum(1 for method, path, _ in requests if method == "GET" and "/activities" in path)


def run(run_dir: Path, market: Market) -> dict:
    return run_paper(
        PaperOptions("alpaca", "sma_cross", PARAMS, SYMBOLS, None, Mode.PAPER, run_dir,
                     max_steps=BARS, on_step=market)
    )  # fmt: skip


def booked_once(journal: pl.DataFrame, made: list) -> bool:  # type: ignore[type-arg]
    """Each fill the fake made is in the journal once: same time, price and quantity."""
    got = Counter(zip(journal["ts"], journal["price"], journal["qty"], strict=True))
    return got == Counter((e.ts, float(e.price), float(e.qty)) for e in made)


def table(path: Path, name: str) -> pl.DataFrame:
    frame = read_table(path, name)
    return frame.drop([c for c in IDS if c in frame.columns])


def test_fills_come_from_the_stream_and_the_journal_equals_the_rest_driven_run(
    alpaca_env: FakeAlpaca, tmp_path: Path
) -> None:
    fake = alpaca_env
    market = Market(fake)
    summary = run(tmp_path / "stream", market)
    assert summary["broker"] == "alpaca" and summary["steps"] == BARS
    made = fill_events(fake.events)
    assert len(made) > 10 and not fill_events(fake.lost_events)
    live = tmp_path / "stream" / JOURNAL
    journal = read_table(live, "fills")
    assert journal.height == len(made) == summary["fills"]
    assert booked_once(journal, made)
    assert market.broker is not None
    assert market.broker.fills_heard == {"stream": len(made), "rest": 0}
    # the steps that booked fills made no REST read of fills (a timer reconcile's aside)
    booked = [(step, reads) for step, reads, fills, rec in market.steps if fills and not rec]
    assert len(booked) > 5 and all(reads == 0 for _, reads in booked), booked
    assert read_table(live, "reconcile").filter(pl.col("kind") == "LATE_FILL").is_empty()

    rest = run_paper(
        PaperOptions("alpaca-fake", "sma_cross", PARAMS, SYMBOLS, None, Mode.PAPER,
                     tmp_path / "rest", bars=BARS)
    )  # fmt: skip
    assert rest["fills"] == summary["fills"] and rest["round_trips"] == summary["round_trips"]
    expected = tmp_path / "rest" / JOURNAL
    for name in ("verdicts", "orders", "fills", "trades", "guard"):
        assert table(live, name).equals(table(expected, name)), name


def test_fills_during_a_stream_outage_are_booked_once_from_rest_after_the_reconnect(
    alpaca_env: FakeAlpaca, tmp_path: Path
) -> None:
    fake = alpaca_env
    market = Market(fake, outage=(45, 58))
    summary = run(tmp_path / "run", market)
    assert summary["steps"] == BARS
    made = fill_events(fake.events)
    lost = fill_events(fake.lost_events)
    assert len(lost) == 2 and len(made) > len(lost)
    journal = read_table(tmp_path / "run" / JOURNAL, "fills")
    assert journal.height == len(made) and booked_once(journal, made)
    assert market.broker is not None
    assert market.broker.fills_heard == {"stream": len(made) - len(lost), "rest": len(lost)}
    assert market.broker.stream_connects == 2
