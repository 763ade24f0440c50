"""The incident model: one sorted timeline of typed events, plus what could not be read.

An ``Incident`` is what every parser returns and what ``load_incident`` merges: its events in
(ts, original order) order, the lines it skipped (tolerant mode) and the warnings about lines
it kept but had to treat specially (an out-of-order timestamp, a bot-reported fill that a
broker export superseded). A consumer counts and lists those instead of guessing at gaps.

The typed events live in ``backstop.replay.events`` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from backstop.errors import ConfigError
from backstop.replay.events import (
    EVENT_TYPES,
    KINDS,
    AccountSnapshot,
    Advisory,
    BotPosition,
    BrokerFill,
    BrokerOrder,
    BrokerPosition,
    Event,
    LogWarning,
    OrderIntent,
    PnlRecord,
    Signal,
)

E = TypeVar("E", bound=Event)
InstrumentSpec = dict[str, float]
"""An instrument's spec: ``tick`` (price increment) and ``multiplier``, e.g. ESZ5 0.25 / 50."""


@dataclass(frozen=True, slots=True)
class SkippedLine:
    """A line (or record) that tolerant mode could not read and left out of the timeline."""

    source: str
    reason: str
    text: str


@dataclass(frozen=True, slots=True)
class ParseWarning:
    """A line that was kept but read specially (e.g. out of order, sorted into place)."""

    source: str
    reason: str
    text: str


@dataclass(frozen=True, slots=True)
class Inference:
    """Something the loader inferred across sources and the report must say.

    ``kind`` is the finding it becomes (``ORDERING_INFERRED``, ``FILLS_MATCHED``,
    ``UNMATCHED_FILLS``, ``EXPORT_WINDOW``, ``START_POSITION_FROM_FILLS``,
    ``START_POSITION_MISMATCH``); ``ts`` the time of the event it is about (``None`` for a
    whole file); ``source`` where that event was read; ``text`` the sentence the report shows;
    ``order`` the order id it concerns, if any (the report notes it on that order).
    """

    kind: str
    ts: int | None
    source: str
    text: str
    order: str | None = None


@dataclass(frozen=True, slots=True)
class OrderTrail:
    """Everything the timeline says about one order id: intents, broker records, fills."""

    order_id: str
    intents: tuple[OrderIntent, ...]
    broker_orders: tuple[BrokerOrder, ...]
    fills: tuple[BrokerFill, ...]
    parent_id: str | None
    legs: tuple[str, ...]

    @property
    def filled_qty(self) -> float:
        """Total filled quantity of this order."""
        return sum(f.qty for f in self.fills)


@dataclass(frozen=True, slots=True)
class Incident:
    """A rebuilt incident: the timeline of one or more sources, ready to be replayed.

    ``tz`` is the time zone the bot's logs were written in (for display; every ts is UTC).
    ``instruments`` maps a symbol to its spec (``tick``, ``multiplier``). ``ignored`` counts
    lines a dialect marked ignorable on purpose (DEBUG chatter). ``inputs`` lists the files
    read and ``bars`` the bar files a scenario names for pricing (read them with
    ``backstop.data.load_bars``). ``inferences`` lists what loading a scenario folder had to
    infer across its sources (orderings, matched and unmatched fills, the export window).
    """

    name: str
    tz: str
    instruments: Mapping[str, InstrumentSpec] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    skipped: tuple[SkippedLine, ...] = ()
    warnings: tuple[ParseWarning, ...] = ()
    ignored: int = 0
    inputs: tuple[str, ...] = ()
    bars: tuple[str, ...] = ()
    inferences: tuple[Inference, ...] = ()
    # execution ids of fills the bot booked as they happened (a live run's journal says
    # which); a fill of an order no decision placed and not booked is one a reconcile booked
    booked: frozenset[str] = frozenset()
    # events grouped by class on the first ``of`` (a replay asks for a dozen kinds, and each
    # scan of a 100,000-line timeline took ~10 ms)
    _by_kind: dict[type, tuple[Event, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @overload
    def of(self, kind: type[E]) -> tuple[E, ...]: ...

    @overload
    def of(self, kind: str) -> tuple[Event, ...]: ...

    def of(self, kind: type[Event] | str) -> tuple[Event, ...]:
        """Return the events of one kind (a class such as ``Signal`` or its ``kind`` name)."""
        cls = KINDS[kind] if isinstance(kind, str) else kind
        groups = self._by_kind
        if self.events and not groups:
            grouped: dict[type, list[Event]] = {}
            for e in self.events:
                grouped.setdefault(type(e), []).append(e)
            groups.update((k, tuple(v)) for k, v in grouped.items())
        return groups.get(cls, ())

    def orders(self) -> dict[str, OrderTrail]:
        """Group intents, broker orders and fills by order id, in order of first appearance.

        Events without an order id (an intent the bot logged before it had one) are not here;
        find them with ``of(OrderIntent)``.
        """
        intents: dict[str, list[OrderIntent]] = {}
        broker: dict[str, list[BrokerOrder]] = {}
        fills: dict[str, list[BrokerFill]] = {}
        order: list[str] = []
        for e in self.events:
            if isinstance(e, OrderIntent | BrokerOrder | BrokerFill) and e.order_id is not None:
                if e.order_id not in intents:
                    order.append(e.order_id)
                    intents[e.order_id], broker[e.order_id], fills[e.order_id] = [], [], []
                if isinstance(e, OrderIntent):
                    intents[e.order_id].append(e)
                elif isinstance(e, BrokerOrder):
                    broker[e.order_id].append(e)
                else:
                    fills[e.order_id].append(e)
        parents = {
            oid: next((b.parent_id for b in broker[oid] if b.parent_id), None) for oid in order
        }
        children: dict[str, list[str]] = {}
        for oid in order:
            if parents[oid] is not None:
                children.setdefault(parents[oid], []).append(oid)
        return {
            oid: OrderTrail(
                order_id=oid,
                intents=tuple(intents[oid]),
                broker_orders=tuple(broker[oid]),
                fills=tuple(fills[oid]),
                parent_id=parents[oid],
                legs=tuple(children.get(oid, ())),
            )
            for oid in order
        }

    def bot_position(self, symbol: str, ts: int | None = None) -> float | None:
        """What the bot believed it held in ``symbol`` at ``ts`` (last report at or before)."""
        return _last_qty(self.events, BotPosition, symbol, ts)

    def broker_position(self, symbol: str, ts: int | None = None) -> float | None:
        """What the broker held in ``symbol`` at ``ts`` (last report at or before), if known."""
        return _last_qty(self.events, BrokerPosition, symbol, ts)

    @property
    def start_ns(self) -> int | None:
        """Timestamp of the first event, ``None`` for an empty timeline."""
        return self.events[0].ts if self.events else None

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every symbol an event names, sorted."""
        return tuple(sorted({s for e in self.events if (s := getattr(e, "symbol", None))}))

    def counts(self) -> dict[str, int]:
        """Number of events per kind, in EVENTS.md order (kinds with none left out)."""
        out = {cls.kind: 0 for cls in EVENT_TYPES}
        for e in self.events:
            out[e.kind] += 1
        return {k: n for k, n in out.items() if n}


def _last_qty(
    events: Iterable[Event], cls: type[BotPosition | BrokerPosition], symbol: str, ts: int | None
) -> float | None:
    qty: float | None = None
    for e in events:
        if ts is not None and e.ts > ts:
            break
        if isinstance(e, cls) and e.symbol == symbol:
            qty = e.qty
    return qty


def sort_events(events: Iterable[Event]) -> tuple[Event, ...]:
    """Sort events by timestamp, keeping the given order among equal timestamps (stable)."""
    return tuple(sorted(events, key=lambda e: e.ts))


def merge(*timelines: Incident, name: str | None = None, tz: str | None = None) -> Incident:
    """Merge timelines into one: events by (ts, timeline order, order within the timeline).

    Name and zone default to the first timeline's. Instruments are united; one symbol with
    two different specs is a ``ConfigError``, because replaying it would have to pick one.
    Skipped lines, warnings, inputs, bar files and inferences are concatenated in timeline
    order.
    """
    if not timelines:
        raise ValueError("merge needs at least one timeline")
    instruments: dict[str, InstrumentSpec] = {}
    for t in timelines:
        for symbol, spec in t.instruments.items():
            if symbol in instruments and dict(instruments[symbol]) != dict(spec):
                raise ConfigError(
                    f"instruments.{symbol}",
                    f"two specs for one symbol: {dict(instruments[symbol])} and {dict(spec)}",
                    source=t.name,
                )
            instruments[symbol] = dict(spec)
    events = sort_events(e for t in timelines for e in t.events)
    return Incident(
        name=name if name is not None else timelines[0].name,
        tz=tz if tz is not None else timelines[0].tz,
        instruments=instruments,
        events=events,
        skipped=tuple(s for t in timelines for s in t.skipped),
        warnings=tuple(w for t in timelines for w in t.warnings),
        ignored=sum(t.ignored for t in timelines),
        inputs=tuple(i for t in timelines for i in t.inputs),
        bars=tuple(b for t in timelines for b in t.bars),
        booked=frozenset().union(*(t.booked for t in timelines)),
        inferences=tuple(i for t in timelines for i in t.inferences),
    )


def describe(incident: Incident) -> dict[str, Any]:
    """Summarise an incident as plain data: counts per kind, skips and warnings."""
    return {
        "name": incident.name,
        "tz": incident.tz,
        "events": len(incident.events),
        "kinds": incident.counts(),
        "skipped": len(incident.skipped),
        "warnings": len(incident.warnings),
        "ignored": incident.ignored,
    }


__all__ = [
    "EVENT_TYPES",
    "KINDS",
    "AccountSnapshot",
    "Advisory",
    "BotPosition",
    "BrokerFill",
    "BrokerOrder",
    "BrokerPosition",
    "Event",
    "Incident",
    "Inference",
    "InstrumentSpec",
    "LogWarning",
    "OrderIntent",
    "OrderTrail",
    "ParseWarning",
    "PnlRecord",
    "Signal",
    "SkippedLine",
    "describe",
    "merge",
    "sort_events",
]
