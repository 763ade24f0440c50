"""Live-path latency: from a signal entering the event driver to its order request leaving.

    python bench/live_latency.py [--signals 1000]

A strategy that enters every fourth bar time and exits two later (1 share, 1% stop, 2% target)
runs through the whole live path against the loopback fake Alpaca: the session decides each
bar's signal in ``PortDriver.on_event``, the bracket manager turns it into commands, and
``AlpacaBroker.submit`` sends them through alpaca-py. Measured per signal that sent an order:

- decision-to-submit: ``on_event`` entered -> the first order request handed to the adapter
  (``AlpacaBroker.submit``, or ``cancel`` for an exit that frees its legs first): the event
  driver's own share (guardrails, sizing, bracket manager, mirror);
- submit: that adapter call -> returned (alpaca-py building and sending the request, the
  fake answering over loopback, the adapter reading the answer).

Times are ``time.perf_counter_ns``; p50 and p99 in microseconds, printed as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from backstop.brokers.alpaca.adapter import AlpacaBroker
from backstop.brokers.alpaca.config import AlpacaConfig, AlpacaKeys
from backstop.data import sample_bars
from backstop.engine.brackets import Venue
from backstop.engine.profile import RiskProfile
from backstop.runners.live.feeds import BrokerBarFeed
from backstop.runners.live.runner import LiveRunner
from backstop.runners.live.session import LiveSession, LiveSetup
from backstop.strategies.base import Param, Strategy
from backstop.strategies.signals import signal_intents
from backstop.testing.fake_alpaca import FakeAlpaca

KEYS = ("fake-key", "fake-secret")


def every_bar(bars: pl.DataFrame, qty: float = 1.0) -> pl.DataFrame:
    """Enter on every fourth bar time, exit two bar times later (the entry has filled)."""
    k = (bars.get_column("ts") // 60_000_000_000) % 4  # the clock, not the window's rows
    return signal_intents(bars, k == 0, k == 2, stop_pct=0.01, target_pct=0.02, qty=qty)


STRATEGY = Strategy(
    "every_bar", every_bar, (Param("qty", float, 1.0, 0.0, None, "shares"),),
    bars_needed=lambda p: ("qty", 1),
)  # fmt: skip


def measure(signals: int) -> dict[str, Any]:
    bars = sample_bars().filter(pl.col("symbol") == "SYN000")
    stamps = bars.get_column("ts").unique().sort().head(2 * signals + 2)  # a signal per 2
    bars = bars.filter(pl.col("ts").is_in(stamps.implode()))
    marks: list[tuple[int, int, int]] = []  # (on_event entered, submit called, returned)
    entered = [0]
    with FakeAlpaca(bars, keys=KEYS) as fake, tempfile.TemporaryDirectory() as tmp:
        config = AlpacaConfig(paper=True, rest_url=fake.url, data_url=fake.url, retry_wait_s=0)
        broker = AlpacaBroker(config, AlpacaKeys(*KEYS), stream=False)

        def timed(send: Any) -> Any:
            def command(cmd: Any) -> None:
                t1 = time.perf_counter_ns()
                send(cmd)
                if entered[0]:  # sent while deciding a signal (legs come later, on fills)
                    marks.append((entered[0], t1, time.perf_counter_ns()))

            return command

        broker.submit = timed(broker.submit)  # type: ignore[method-assign]
        broker.cancel = timed(broker.cancel)  # type: ignore[method-assign]
        setup = LiveSetup(STRATEGY, {}, ("SYN000",), RiskProfile(), "lat", venue=Venue())
        session = LiveSession(setup, broker, float(broker.account().cash))
        real_on_event = session.driver.on_event

        def timed_on_event(ev: Any, row: int) -> None:
            entered[0] = time.perf_counter_ns()
            try:
                real_on_event(ev, row)
            finally:
                entered[0] = 0

        session.driver.on_event = timed_on_event  # type: ignore[method-assign]

        def advance() -> bool:
            moved = fake.advance()
            broker.refresh()
            return moved

        feed = BrokerBarFeed(broker, ("SYN000",), advance=advance)
        runner = LiveRunner(session, broker, feed, Path(tmp), journal_every_s=3600.0)
        runner.start()
        t0 = time.perf_counter()
        steps = runner.run()
        seconds = time.perf_counter() - t0
    first = {}
    for start, called, done in marks:  # the first request a signal's decision sent
        first.setdefault(start, (called, done))
    decide = np.array([c - s for s, (c, _) in first.items()]) / 1e3
    submit = np.array([d - c for c, d in first.values()]) / 1e3
    return {
        "signals_with_orders": len(first),
        "bar_times": steps,
        "decision_to_submit_us_p50": round(float(np.percentile(decide, 50)), 1),
        "decision_to_submit_us_p99": round(float(np.percentile(decide, 99)), 1),
        "submit_us_p50": round(float(np.percentile(submit, 50)), 1),
        "submit_us_p99": round(float(np.percentile(submit, 99)), 1),
        "seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--signals", type=int, default=1000)
    args = parser.parse_args()
    print(json.dumps(measure(args.signals), sort_keys=True))


if __name__ == "__main__":
    main()
