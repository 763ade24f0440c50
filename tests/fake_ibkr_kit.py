"""Helpers for the fake IBKR gateway tests: the real ib_async ``IB`` client on a ``FakeIBKR``.

``es_tape`` builds one-minute ES bars in December 2025 (the front contract is ESZ5,
202512); ``connect`` opens a real ``IB`` (sync API) and always disconnects; ``sync`` is a
round trip that orders the client and the fake; ``wait`` runs ib_async's event loop until a
condition holds, bounded in time (no fixed sleeps).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import polars as pl
from ib_async import IB
from kit import bars, combine

from backstop.testing.fake_ibkr import FakeIBKR

DEC_2025 = 1_764_599_400_000_000_000  # 2025-12-01 14:30 UTC

Row = tuple[float, float, float, float]


def es_tape(rows: list[Row], symbol: str = "ES", **more: list[Row]) -> pl.DataFrame:
    """One-minute bars from 2025-12-01 14:30 UTC: ``rows`` for ``symbol``, ``more`` by name."""
    frames = [bars(rows, symbol=symbol, start_ns=DEC_2025)]
    frames += [bars(r, symbol=name, start_ns=DEC_2025) for name, r in more.items()]
    return combine(*frames)


def flat(n: int, price: float) -> list[Row]:
    """``n`` bars that never leave ``price``."""
    return [(price, price, price, price)] * n


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


@contextlib.contextmanager
def connect(fake: FakeIBKR, client_id: int = 1) -> Iterator[IB]:
    """A real ib_async client connected to the fake (disconnected on the way out).

    ib_async's decoder drops a message it cannot parse with only a log line, so every
    ``Decoder`` error logged meanwhile fails the test: each message the fake sent was read.
    """
    decoder = logging.getLogger("ib_async.Decoder")
    errors = _Collect()
    decoder.addHandler(errors)
    ib = IB()
    ib.RaiseRequestErrors = False
    try:
        ib.connect(fake.host, fake.port, clientId=client_id, timeout=5)
        yield ib
    finally:
        ib.disconnect()
        decoder.removeHandler(errors)
    assert errors.records == [], f"ib_async could not decode: {errors.records}"


def wait(ib: IB, condition: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """Run ib_async's loop until ``condition()`` is truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        ib.sleep(0.01)


def wait_disconnected(ib: IB, timeout: float = 5.0) -> None:
    """Run ib_async's loop until it has seen the fake drop the socket (bounded)."""
    deadline = time.monotonic() + timeout
    while ib.isConnected():
        if time.monotonic() > deadline:
            raise AssertionError(f"the client still looks connected after {timeout} s")
        with contextlib.suppress(ConnectionError):  # ib_async raises the drop from sleep
            ib.sleep(0.01)


def sync(ib: IB) -> None:
    """A round trip (reqCurrentTime): when its answer is in, the fake has handled every
    message the client sent before it, and the client has read everything the fake sent
    before the answer (one ordered socket both ways). Replaces sleeps in the tests."""
    ib.reqCurrentTime()


def advance(fake: FakeIBKR, ib: IB, n: int = 1) -> None:
    """Let the fake handle what the client sent, move its clock ``n`` bars, and let the
    client read every report that produced."""
    sync(ib)
    assert fake.advance(n), "the tape ran out"
    sync(ib)
