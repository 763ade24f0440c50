"""Helpers for the Alpaca adapter tests: an ``AlpacaBroker`` (real alpaca-py inside) on a
``FakeAlpaca`` over 127.0.0.1, commands built the way the core builds them, and ``Events``,
which drains the broker until a condition holds instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from backstop.brokers.alpaca import AlpacaBroker, AlpacaConfig, AlpacaKeys
from backstop.domain.commands import SubmitOrder
from backstop.domain.enums import OrderRole, OrderType, Side
from backstop.domain.events import BrokerEvent, Execution, OrderUpdate
from backstop.engine.clock import SimClock
from backstop.testing.fake_alpaca import FakeAlpaca

RUN = "t1"


def broker(fake: FakeAlpaca, *, stream: bool = True) -> AlpacaBroker:
    """An adapter on ``fake``: alpaca-py retries at once, the stream reconnects fast, and
    ``ts_init`` is 0 (a simulated clock) so events compare exactly."""
    config = AlpacaConfig(
        rest_url=fake.url,
        stream_url=fake.stream_url,
        request_timeout_s=5.0,
        retry_wait_s=0.0,
        reconnect_min_s=0.05,
    )
    return AlpacaBroker(
        config, AlpacaKeys(fake.key_id, fake.secret_key), clock=SimClock(0), stream=stream
    )


def cid(cycle: int, code: str, n: int) -> str:
    return f"bs-{RUN}-{cycle}-{code}-{n}"


def entry(cycle: int, symbol: str = "AAPL", qty: float = 10, **kw: Any) -> SubmitOrder:
    return SubmitOrder(cid(cycle, "E", 0), symbol, Side.BUY, qty, trade_cycle_id=cycle, **kw)


def stop_leg(
    cycle: int, price: float, symbol: str = "AAPL", qty: float = 10, n: int = 1, **kw: Any
):
    return SubmitOrder(
        cid(cycle, "SL", n), symbol, Side.SELL, qty, OrderType.STOP, role=OrderRole.STOP_LOSS,
        trade_cycle_id=cycle, stop_price=price, reduce_only=True, **kw,
    )  # fmt: skip


def target_leg(
    cycle: int, price: float, symbol: str = "AAPL", qty: float = 10, n: int = 2, **kw: Any
) -> SubmitOrder:
    return SubmitOrder(
        cid(cycle, "TP", n), symbol, Side.SELL, qty, OrderType.LIMIT, role=OrderRole.TAKE_PROFIT,
        trade_cycle_id=cycle, limit_price=price, reduce_only=True, **kw,
    )  # fmt: skip


def bracket(cycle: int, stop: float, target: float, symbol: str = "AAPL", qty: float = 10):
    parent = cid(cycle, "E", 0)
    legs = (
        stop_leg(cycle, stop, symbol, qty, parent_id=parent),
        target_leg(cycle, target, symbol, qty, parent_id=parent),
    )
    return entry(cycle, symbol, qty, legs=legs)


class Events:
    """Every event drained from one broker (any ``BrokerPort``), in order."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.all: list[BrokerEvent] = []

    def drain(self) -> list[BrokerEvent]:
        new = self.broker.drain_events()
        self.all.extend(new)
        return new

    def until(self, condition: Callable[[list[BrokerEvent]], bool], timeout: float = 5.0) -> None:
        """Drain until ``condition(self.all)`` holds; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            if condition(self.all):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; events so far: {self.all}")
            time.sleep(0.01)

    def fills(self) -> list[Execution]:
        return [e for e in self.all if isinstance(e, Execution)]

    def updates(self) -> list[tuple[str, str]]:
        """(kind name, client id) of every OrderUpdate, in order."""
        return [(e.kind.name, e.client_order_id) for e in self.all if isinstance(e, OrderUpdate)]

    def has_fill(self, client_order_id: str) -> Callable[[list[BrokerEvent]], bool]:
        return lambda evs: any(
            isinstance(e, Execution) and e.client_order_id == client_order_id for e in evs
        )
