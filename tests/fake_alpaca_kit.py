"""Helpers for the fake Alpaca tests: real alpaca-py clients pointed at a ``FakeAlpaca``.

``clients`` builds a ``TradingClient`` with its retry wait at 0 (alpaca-py's own retries stay
on); ``StreamRunner`` runs a real ``TradingStream`` in its own thread and collects the trade
updates; ``eventually`` polls a condition instead of sleeping a fixed time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import polars as pl
from alpaca.trading.client import TradingClient
from alpaca.trading.models import TradeUpdate
from alpaca.trading.stream import TradingStream
from kit import bars, combine

from backstop.testing.fake_alpaca import FakeAlpaca


def tape(**symbols: list[tuple[float, float, float, float]]) -> pl.DataFrame:
    """One-minute bars from 2024-01-02 14:30 UTC, (open, high, low, close) rows per symbol."""
    return combine(*(bars(rows, symbol=name) for name, rows in symbols.items()))


def flat(n: int, price: float = 100.0) -> list[tuple[float, float, float, float]]:
    """``n`` bars that never move from ``price``."""
    return [(price, price, price, price)] * n


def trading(fake: FakeAlpaca) -> TradingClient:
    """A real TradingClient on the fake, retrying at once (tests never sleep 3 s)."""
    client = TradingClient(fake.key_id, fake.secret_key, url_override=fake.url)
    client._retry_wait = 0
    return client


def eventually(condition: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(0.01)


class StreamRunner:
    """A real ``TradingStream`` in its own thread, collecting ``TradeUpdate``s."""

    def __init__(self, fake: FakeAlpaca) -> None:
        self.fake = fake
        self.updates: list[TradeUpdate] = []
        self._lock = threading.Lock()
        self.stream = TradingStream(fake.key_id, fake.secret_key, url_override=fake.stream_url)
        self.stream._reconnect_min_backoff = 0.05  # reconnect fast after a drop
        self.stream._reconnect_max_backoff = 0.2
        self.stream.subscribe_trade_updates(self._on_update)
        self.thread = threading.Thread(target=self.stream.run, daemon=True)

    async def _on_update(self, update: TradeUpdate) -> None:
        with self._lock:
            self.updates.append(update)

    def seen(self) -> list[tuple[str, str]]:
        """(event, client_order_id) of every update received so far."""
        with self._lock:
            return [
                (str(getattr(u.event, "value", u.event)), u.order.client_order_id)
                for u in self.updates
            ]

    def __enter__(self) -> StreamRunner:
        self.thread.start()
        eventually(lambda: self.fake.hub.listening() == 1, what="the stream to listen")
        return self

    def __exit__(self, *exc: object) -> None:
        eventually(lambda: self.stream._loop is not None, what="the stream loop")
        asyncio.run_coroutine_threadsafe(self.stream.stop_ws(), self.stream._loop).result(5)
        self.fake.drop_stream()  # its recv returns at once instead of after 5 s
        self.thread.join(10)
        assert not self.thread.is_alive(), "TradingStream did not stop within 10 s"
