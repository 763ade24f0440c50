"""The typed events of an incident timeline: what a bot believed, decided and was told.

Every event is a frozen, slotted record with ``ts`` (int ns UTC), ``source`` (where it was
read: ``file:line`` for line-oriented files, ``file:[i].legs[j]`` for JSON documents) and a
class-level ``kind``, the name the JSONL log and the dialect files use for it. Sides are ints
(+1 buys, -1 sells); quantities of orders and fills are positive, positions are signed.
Fields that a source may not know are optional and default to ``None``: an unknown value is
``None``, never a made-up zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Common part of every timeline event: when it happened and where it was read."""

    kind: ClassVar[str] = "event"
    ts: int
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BotPosition(Event):
    """What the bot believed it held (signed: short is negative), as its own log says."""

    kind: ClassVar[str] = "bot_position"
    symbol: str
    qty: float


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerPosition(Event):
    """What the broker actually held (signed), where a statement or snapshot shows it."""

    kind: ClassVar[str] = "broker_position"
    symbol: str
    qty: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Signal(Event):
    """A strategy's call: a direction with its label, confidence and proposed levels.

    ``intent`` is what the signal itself says (``"entry"``/``"exit"``), ``None`` when it does
    not say; how the bot then treated it is the ``path`` of the ``OrderIntent`` that followed.
    ``stop_pct``/``target_pct`` are protective distances as fractions of the entry price, for
    bots that send percentages instead of levels.
    """

    kind: ClassVar[str] = "signal"
    symbol: str
    side: int
    label: str | None = None
    confidence: float | None = None
    price: float | None = None
    stop: float | None = None
    target: float | None = None
    intent: str | None = None
    source_id: str | None = None
    strategy_id: str | None = None
    stop_pct: float | None = None
    target_pct: float | None = None
    target_dollars: float | None = None  # notional the signal source sized (seed 000)


@dataclass(frozen=True, slots=True, kw_only=True)
class Advisory(Event):
    """An advisor's verdict on trading now (``WAIT``, ``GO``, ...), upper-cased."""

    kind: ClassVar[str] = "advisory"
    symbol: str
    verdict: str
    confidence: float | None = None
    agent: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderIntent(Event):
    """What the bot decided to send, and which code path (``entry``/``exit``) it took.

    ``qty`` is ``None`` when the bot logged a decision without a size (seed 003: its order
    function only logged that it would place an order and never called the broker).
    """

    kind: ClassVar[str] = "order_intent"
    symbol: str
    side: int
    path: str
    qty: float | None = None
    order_id: str | None = None
    stop: float | None = None
    target: float | None = None
    order_type: str | None = None
    limit_price: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerOrder(Event):
    """An order as the broker recorded it; a bracket leg names its parent in ``parent_id``.

    An export is a snapshot: ``status`` is the order's last status, stamped at submission.
    """

    kind: ClassVar[str] = "broker_order"
    order_id: str
    symbol: str
    side: int
    qty: float | None = None
    order_type: str | None = None
    status: str | None = None
    parent_id: str | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerFill(Event):
    """An execution: ``qty`` > 0 at ``price``; ``fee`` is a positive cost (negative: rebate)."""

    kind: ClassVar[str] = "broker_fill"
    symbol: str
    side: int
    qty: float
    price: float
    order_id: str | None = None
    fee: float | None = None
    exec_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PnlRecord(Event):
    """A realized P&L figure someone reported (a broker statement, the bot's own log)."""

    kind: ClassVar[str] = "pnl"
    amount: float
    symbol: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogWarning(Event):
    """A log line worth showing next to the decisions: a warning or a telling message."""

    kind: ClassVar[str] = "log_warning"
    message: str
    logger: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountSnapshot(Event):
    """The account's equity (and cash, when known) as the bot or broker reported it."""

    kind: ClassVar[str] = "account"
    equity: float
    cash: float | None = None


EVENT_TYPES: tuple[type[Event], ...] = (
    BotPosition,
    BrokerPosition,
    Signal,
    Advisory,
    OrderIntent,
    BrokerOrder,
    BrokerFill,
    PnlRecord,
    LogWarning,
    AccountSnapshot,
)
"""Every event class, in the order EVENTS.md documents them."""

KINDS: dict[str, type[Event]] = {cls.kind: cls for cls in EVENT_TYPES}
"""Event class by its ``kind`` name."""
