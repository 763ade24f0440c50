"""Helpers for the IBKR adapter tests: a one-symbol MES tape a bracket can be scripted on,
an ``IBKRBroker`` (the real ib_async inside) on a ``FakeIBKR`` over 127.0.0.1, commands
built the way the core builds them, and ``Events``, which drains the broker until a
condition holds instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import alpaca_kit
import polars as pl

from backstop.brokers.ibkr import IBKRBroker, IBKRConfig
from backstop.data.schema import BAR_SCHEMA
from backstop.domain.commands import SubmitOrder
from backstop.domain.enums import OrderRole, OrderType, Side
from backstop.domain.events import BrokerEvent, Execution
from backstop.engine.clock import SimClock

RUN = "t1"
SYMBOL = "MESZ5"
T0 = 1764599400_000000000  # 2025-12-01 14:30 UTC
MINUTE = 60_000_000_000
# (open, high, low, close): flat, the entry's bar (opens 6000.25), a bar that reaches
# 6011 (a 6010 target fills), then quiet bars
PATH = [
    (6000.0, 6001.0, 5999.0, 6000.0),
    (6000.25, 6003.0, 5999.5, 6002.0),
    (6002.0, 6011.0, 6001.0, 6009.0),
    *[(6009.0, 6009.5, 6008.5, 6009.0)] * 8,
]


def mes_bars(path: list[tuple[float, float, float, float]] = PATH) -> pl.DataFrame:
    """One-minute MESZ5 bars from T0 along ``path``."""
    return pl.DataFrame(
        {
            "ts": [T0 + i * MINUTE for i in range(len(path))],
            "symbol": [SYMBOL] * len(path),
            "open": [p[0] for p in path],
            "high": [p[1] for p in path],
            "low": [p[2] for p in path],
            "close": [p[3] for p in path],
            "volume": [100.0] * len(path),
        },
        schema=BAR_SCHEMA,
    )


def broker(port: int, client_id: int = 7, **kw: Any) -> IBKRBroker:
    """An adapter on the fake at ``port``: short bounds, fast reconnects, and ``ts_init``
    0 (a simulated clock) so events compare exactly."""
    instruments = kw.pop("instruments", None)
    config = IBKRConfig(
        port=port, client_id=client_id, connect_timeout_s=5.0, request_timeout_s=5.0,
        commission_wait_s=1.0, reconnect_every_s=0.05, max_requests_per_s=0, **kw,
    )  # fmt: skip
    return IBKRBroker(config, clock=SimClock(0), instruments=instruments, symbols=[SYMBOL])


def cid(cycle: int, code: str, n: int) -> str:
    return f"bs-{RUN}-{cycle}-{code}-{n}"


def entry(cycle: int, qty: float = 1, **kw: Any) -> SubmitOrder:
    return SubmitOrder(cid(cycle, "E", 0), SYMBOL, Side.BUY, qty, trade_cycle_id=cycle, **kw)


def stop_leg(cycle: int, price: float, qty: float = 1, n: int = 1, **kw: Any) -> SubmitOrder:
    return SubmitOrder(
        cid(cycle, "SL", n), SYMBOL, Side.SELL, qty, OrderType.STOP, role=OrderRole.STOP_LOSS,
        trade_cycle_id=cycle, stop_price=price, reduce_only=True, **kw,
    )  # fmt: skip


def target_leg(cycle: int, price: float, qty: float = 1, n: int = 2, **kw: Any) -> SubmitOrder:
    return SubmitOrder(
        cid(cycle, "TP", n), SYMBOL, Side.SELL, qty, OrderType.LIMIT, role=OrderRole.TAKE_PROFIT,
        trade_cycle_id=cycle, limit_price=price, reduce_only=True, **kw,
    )  # fmt: skip


def bracket(cycle: int, stop: float = 5990.0, target: float = 6010.0, qty: float = 1):
    parent = cid(cycle, "E", 0)
    legs = (
        stop_leg(cycle, stop, qty, parent_id=parent),
        target_leg(cycle, target, qty, parent_id=parent),
    )
    return entry(cycle, qty, legs=legs)


class Events(alpaca_kit.Events):
    """Every event drained from the IBKR adapter, in order (the Alpaca kit's collector, with
    a gateway round trip and a longer wait)."""

    def settle(self) -> list[BrokerEvent]:
        """One round trip to the gateway, then what it said (the fake's ``advance`` has
        written its reports before it returns, so they are all in)."""
        self.broker.refresh()
        return self.drain()

    def until(self, condition: Callable[[list[BrokerEvent]], bool], timeout: float = 8.0) -> None:
        super().until(condition, timeout)

    def kinds(self) -> list[tuple[str, str]]:
        """(FILL or the update's kind, client id) of every event, in order."""
        return [
            ("FILL" if isinstance(e, Execution) else e.kind.name, e.client_order_id)
            for e in self.all
        ]
