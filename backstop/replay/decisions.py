"""The decisions of an incident: what the bot decided (or silently failed to), one by one.

A decision is what today's pipeline is asked to judge again:

- every ``OrderIntent`` the bot logged (entry or exit path, with its order id when it had
  one), carrying the price, confidence and ids of the signal that led to it;
- every ``Signal`` that states its own intent (entry/exit) but was followed by no intent: a
  decision the bot made silently (seed 000's drops at sizing). A bare directional score
  without an intent is not a decision (seed 004's HOLD/SELL scores the bot ignored).

For each decision, ``bot_sent`` is what actually reached the broker for it: (side, qty) from
the broker's own records, or ``None`` when nothing did (the bot's order function only
logged and never called the broker, or it dropped the order silently).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from backstop.replay.events import OrderIntent, Signal
from backstop.replay.timeline import Incident

SIGNAL_WINDOW_NS = 120 * 1_000_000_000  # an intent belongs to a signal this recent


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision to judge again, with what the bot did about it."""

    label: str  # order id, else the signal's source id, else SYMBOL@local time
    ts: int
    symbol: str
    side: int
    intent: str  # "entry" or "exit"
    qty: float | None
    price: float | None
    stop: float | None
    target: float | None
    stop_pct: float | None
    target_pct: float | None
    target_dollars: float | None
    conviction: float | None  # 0..100 (a signal's confidence x 100)
    strategy_id: str
    source_id: int | None
    order_id: str | None
    bot_sent: tuple[int, float] | None  # what reached the broker for it
    source: str


def _source_number(raw: str | None) -> int | None:
    """``mention:317`` -> 317: the number a new-signals-only cursor compares."""
    if raw is None:
        return None
    digits = re.findall(r"\d+", raw)
    return int(digits[-1]) if digits else None


def _local(ts: int, tz: str) -> str:
    return datetime.fromtimestamp(ts / 1e9, tz=UTC).astimezone(ZoneInfo(tz)).strftime("%H:%M:%S")


def decisions_of(incident: Incident) -> tuple[Decision, ...]:
    """Every decision of the incident, in timeline order."""
    trails = incident.orders()
    signals = incident.of(Signal)
    by_symbol: dict[str, tuple[list[int], list[Signal]]] = {}
    for sig in signals:  # the timeline is sorted by ts, so each list is too
        stamps, sigs = by_symbol.setdefault(sig.symbol, ([], []))
        stamps.append(sig.ts)
        sigs.append(sig)
    used: set[int] = set()
    out: list[tuple[int, int, Decision]] = []
    for k, intent in enumerate(incident.of(OrderIntent)):
        sig = _signal_before(by_symbol, intent.symbol, intent.ts)
        if sig is not None:
            used.add(id(sig))
        sent = None
        if intent.order_id is not None and intent.order_id in trails:
            trail = trails[intent.order_id]
            if trail.broker_orders or trail.fills:
                qty = intent.qty if intent.qty is not None else trail.filled_qty
                sent = (intent.side, float(qty))
        label = intent.order_id or _label(sig, intent.symbol, intent.ts, incident.tz)
        out.append(
            (
                intent.ts,
                k,
                Decision(
                    label=label,
                    ts=intent.ts,
                    symbol=intent.symbol,
                    side=intent.side,
                    intent=intent.path,
                    qty=intent.qty,
                    price=intent.limit_price or (sig.price if sig else None),
                    stop=intent.stop,
                    target=intent.target,
                    stop_pct=sig.stop_pct if sig and intent.stop is None else None,
                    target_pct=sig.target_pct if sig and intent.target is None else None,
                    target_dollars=sig.target_dollars if sig else None,
                    conviction=_conviction(sig),
                    strategy_id=(sig.strategy_id if sig and sig.strategy_id else "bot"),
                    source_id=_source_number(sig.source_id) if sig else None,
                    order_id=intent.order_id,
                    bot_sent=sent,
                    source=intent.source,
                ),
            )
        )
    for k, sig in enumerate(signals):
        if id(sig) in used or sig.intent is None:
            continue
        out.append(
            (
                sig.ts,
                10_000_000 + k,
                Decision(
                    label=_label(sig, sig.symbol, sig.ts, incident.tz),
                    ts=sig.ts,
                    symbol=sig.symbol,
                    side=sig.side,
                    intent=sig.intent,
                    qty=None,
                    price=sig.price,
                    stop=sig.stop,
                    target=sig.target,
                    stop_pct=sig.stop_pct,
                    target_pct=sig.target_pct,
                    target_dollars=sig.target_dollars,
                    conviction=_conviction(sig),
                    strategy_id=sig.strategy_id or "bot",
                    source_id=_source_number(sig.source_id),
                    order_id=None,
                    bot_sent=None,
                    source=sig.source,
                ),
            )
        )
    out.sort(key=lambda item: (item[0], item[1]))
    return tuple(d for _, _, d in out)


def _signal_before(by_symbol: dict[str, tuple[list[int], list[Signal]]], symbol: str, ts: int):
    """The latest signal of ``symbol`` at or before ``ts`` within the window, else None."""
    stamps, sigs = by_symbol.get(symbol, ([], []))
    k = bisect_right(stamps, ts) - 1
    if k >= 0 and ts - SIGNAL_WINDOW_NS <= stamps[k]:
        return sigs[k]
    return None


def _conviction(sig: Signal | None) -> float | None:
    if sig is None or sig.confidence is None:
        return None
    return round(sig.confidence * 100.0, 6)


def _label(sig: Signal | None, symbol: str, ts: int, tz: str) -> str:
    if sig is not None and sig.source_id:
        return sig.source_id
    return f"{symbol}@{_local(ts, tz)}"
