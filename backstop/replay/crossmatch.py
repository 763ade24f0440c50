"""Fills across sources: each execution counted once, and never before the order behind it.

A scenario folder may hold the bot's log (which often reports its own fills) next to broker
exports (the truth about fills). ``reconcile`` joins them in four steps:

1. **By order id.** A fill the log reported for an order id that a broker export also fills
   is dropped from the log's side, with a warning naming both.
2. **Without a shared id.** A broker execution without an order id (an IBKR Activity
   Statement), or with one no log names (IB's own ids), is matched to a fill the bot
   reported: same symbol, side and quantity, the nearest in time within ``FILL_WINDOW_NS``
   of the broker's stamp (a whole-second stamp covers its second); an equal price first,
   then any price (the broker's is kept, the difference reported). Then records split
   differently on the two sides: one broker row that is several bot fills, or several
   executions that are one bot fill, the quantities adding up within the window. The bot's
   fills are dropped and the broker's take the bot's order id. One still unmatched that
   another export holds too (same symbol, side, quantity and price within the window: two
   exports of one account) is dropped in favour of that one.
3. **To the bot's orders.** A broker execution still unmatched fills an order the bot logged
   (its first ``order_intent`` with an id) that has that much quantity left to fill (an
   intent without a size: until anything fills it): same symbol and side, placed at most
   ``INTENT_WINDOW_NS`` before the execution; the latest such order. It takes the order id.
4. **Order in time** (placement.py): a fill never precedes the order that caused it.

Everything inferred becomes an ``Inference`` the report shows: ``ORDERING_INFERRED``,
``FILLS_MATCHED`` and ``UNMATCHED_FILLS`` (broker executions of no logged order or fill, and
fills the bot reported that no broker export shows: both kept, neither silently).
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from backstop.replay.events import BrokerFill, BrokerOrder, OrderIntent
from backstop.replay.placement import SECOND_NS, FillPlacement, Key, fill_text
from backstop.replay.timeline import Incident, Inference, ParseWarning, sort_events
from backstop.replay.window import local_time

FILL_WINDOW_NS = 5 * SECOND_NS
"""A bot-reported fill and a broker execution without a shared id match within this window."""
INTENT_WINDOW_NS = 60 * SECOND_NS
"""A broker execution without a shared id fills a bot order placed at most this long before."""


@dataclass
class Source:
    """One input of a scenario: its timeline, whether it is a broker export, and the
    resolution of its stamps in ns (0: exact; IBKR exports: one second)."""

    part: Incident
    broker: bool
    resolution: int = 0


def reconcile(sources: list[Source], tz: str) -> list[Incident]:
    """Join the sources' fills (module doc); return each source's timeline, reconciled."""
    return _Reconcile(sources, tz).run()


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


class _Reconcile(FillPlacement):
    def __init__(self, sources: list[Source], tz: str) -> None:
        self.sources = sources
        self.tz = tz
        self.events = [list(s.part.events) for s in sources]
        self.warnings = [list(s.part.warnings) for s in sources]
        self.notes: list[list[Inference]] = [[] for _ in sources]
        self.dropped: set[Key] = set()
        self.bot_ts: dict[Key, int] = {}  # broker fill -> the bot's own stamp of it
        self.broker_fills = self._fills(broker=True)
        self.log_fills = self._fills(broker=False)

    def _fills(self, broker: bool) -> list[Key]:
        return [
            (p, i)
            for p, s in enumerate(self.sources)
            if s.broker == broker
            for i, e in enumerate(self.events[p])
            if isinstance(e, BrokerFill)
        ]

    def run(self) -> list[Incident]:
        if self.broker_fills:
            self._by_order_id()
            unmatched = self._by_fields()
            unmatched = self._across_exports(unmatched)
            unmatched = self._to_intents(unmatched)
            self._report_unmatched(unmatched)
        if self.broker_fills or self.log_fills:
            self.place_fills()
        if not self.dropped and not any(self.notes):  # nothing joined, dropped or placed
            return [s.part for s in self.sources]
        out = []
        for p, s in enumerate(self.sources):
            kept = [e for i, e in enumerate(self.events[p]) if (p, i) not in self.dropped]
            out.append(
                dataclasses.replace(
                    s.part,
                    events=sort_events(kept),
                    warnings=tuple(self.warnings[p]),
                    inferences=s.part.inferences + tuple(self.notes[p]),
                )
            )
        return out

    # ---- 1. by order id -------------------------------------------------------------------
    def _by_order_id(self) -> None:
        truth: dict[str, list[Key]] = {}
        for k in self.broker_fills:
            if self.fill(k).order_id is not None:
                truth.setdefault(self.fill(k).order_id or "", []).append(k)
        used: set[Key] = set()
        for k in self.log_fills:
            e = self.fill(k)
            same_id = truth.get(e.order_id or "") if e.order_id is not None else None
            if not same_id:
                continue
            match = next((b for b in same_id if b not in used and _same(self.fill(b), e)), None)
            if match is not None:
                used.add(match)
                self.bot_ts[match] = e.ts
                src = self.fill(match).source
                reason = f"bot-reported fill of order {e.order_id} duplicates {src}; kept that"
            else:
                reason = (
                    f"bot-reported fill of order {e.order_id} ({e.qty:g} @ {e.price:g}) differs "
                    f"from the broker export ({', '.join(self.fill(b).source for b in same_id)});"
                    " kept the export"
                )
            self.dropped.add(k)
            self.warnings[k[0]].append(ParseWarning(e.source, reason, ""))

    # ---- 2. without a shared id -----------------------------------------------------------
    def _named_ids(self) -> set[str]:
        named: set[str] = set()
        for p, s in enumerate(self.sources):
            for e in self.events[p]:
                oid = getattr(e, "order_id", None)
                if oid is not None and (not s.broker or isinstance(e, BrokerOrder)):
                    named.add(oid)
        return named

    def _by_fields(self) -> list[Key]:
        named = self._named_ids()
        candidates = [
            k
            for k in self.broker_fills
            if self.fill(k).order_id is None or self.fill(k).order_id not in named
        ]
        candidates.sort(key=lambda k: self.fill(k).ts)
        index: dict[tuple[str, int], list[tuple[int, Key]]] = {}
        for k in self.log_fills:
            if k not in self.dropped:
                f = self.fill(k)
                index.setdefault((f.symbol, f.side), []).append((f.ts, k))
        for rows in index.values():
            rows.sort()
        matched: set[Key] = set()
        for exact in (True, False):
            for k in candidates:
                if k in matched:
                    continue
                best = self._nearest_log_fill(k, index, exact)
                if best is not None:
                    matched.add(k)
                    self._take(k, best)
        left = [k for k in candidates if k not in matched]
        matched |= self._one_to_many(left, index)
        left = [k for k in left if k not in matched]
        matched |= self._many_to_one(left)
        return [k for k in left if k not in matched]

    def _gap(self, k: Key, ts: int) -> int:
        """How far ``ts`` lies from broker fill ``k``'s stamp (0 inside its resolution)."""
        b, res = self.fill(k), self.sources[k[0]].resolution
        if b.ts <= ts < b.ts + max(res, 1):
            return 0
        return min(abs(ts - b.ts), abs(ts - b.ts - res))

    def _one_to_many(
        self, candidates: list[Key], index: dict[tuple[str, int], list[tuple[int, Key]]]
    ) -> set[Key]:
        """One broker row that is several fills the bot reported (an Activity Statement's
        ``Order`` row sums its executions): same symbol and side, quantities adding up."""
        matched = set()
        for k in candidates:
            b = self.fill(k)
            rows = index.get((b.symbol, b.side), [])
            lo = bisect_left(rows, (b.ts - FILL_WINDOW_NS,))
            hi = bisect_right(rows, (b.ts + self.sources[k[0]].resolution + FILL_WINDOW_NS + 1,))
            near = sorted(
                (self._gap(k, ts), ts, log)
                for ts, log in rows[lo:hi]
                if log not in self.dropped and self._gap(k, ts) <= FILL_WINDOW_NS
            )
            group = _adding_up([log for _, _, log in near], self.fill, b.qty)
            if group is None or len({self.fill(g).order_id for g in group}) > 1:
                continue
            matched.add(k)
            first = min(group, key=lambda g: self.fill(g).ts)
            self._take(k, first, parts=len(group))
            for g in group:
                self.dropped.add(g)
        return matched

    def _many_to_one(self, candidates: list[Key]) -> set[Key]:
        """Several broker executions that are one fill the bot reported (the bot logged the
        order's total): same symbol and side, quantities adding up, each within the window."""
        matched: set[Key] = set()
        for log in self.log_fills:
            if log in self.dropped:
                continue
            f = self.fill(log)
            near = sorted(
                (self._gap(k, f.ts), self.fill(k).ts, k)
                for k in candidates
                if k not in matched
                and (self.fill(k).symbol, self.fill(k).side) == (f.symbol, f.side)
                and self._gap(k, f.ts) <= FILL_WINDOW_NS
            )
            group = _adding_up([k for _, _, k in near], self.fill, f.qty)
            if group is None:
                continue
            for k in group:
                self._take(k, log, parts=len(group))
            matched.update(group)
        return matched

    def _nearest_log_fill(
        self, k: Key, index: dict[tuple[str, int], list[tuple[int, Key]]], exact: bool
    ) -> Key | None:
        b = self.fill(k)
        rows = index.get((b.symbol, b.side), [])
        lo = bisect_left(rows, (b.ts - FILL_WINDOW_NS,))
        hi = bisect_right(rows, (b.ts + self.sources[k[0]].resolution + FILL_WINDOW_NS + 1,))
        best: tuple[int, Key] | None = None
        for ts, log in rows[lo:hi]:
            f = self.fill(log)
            if log in self.dropped or not _close(f.qty, b.qty):
                continue
            if exact and not _close(f.price, b.price):
                continue
            gap = self._gap(k, ts)
            if gap <= FILL_WINDOW_NS and (best is None or gap < best[0]):
                best = (gap, log)
        return None if best is None else best[1]

    def _take(self, k: Key, log: Key, parts: int = 1) -> None:
        """Broker fill ``k`` is (part of) the bot-reported fill ``log``: keep the broker's."""
        b, f = self.fill(k), self.fill(log)
        self.dropped.add(log)
        self.bot_ts[k] = f.ts
        self.events[k[0]][k[1]] = dataclasses.replace(b, order_id=f.order_id or b.order_id)
        order = f" (order {f.order_id})" if f.order_id else ""
        was = f"; the export names order {b.order_id}" if b.order_id else ""
        price = ""
        if parts == 1 and not _close(f.price, b.price):
            price = f"; prices differ, kept the broker's, not {f.price:g}"
        what = "the fill the bot reported"
        if parts > 1 and f.qty > b.qty:  # several executions, one bot fill
            what = f"one of {parts} executions of the fill the bot reported"
        elif parts > 1:  # one broker row, several bot fills
            what = f"the {parts} fills the bot reported, the first"
        self.note(
            k,
            "FILLS_MATCHED",
            f"broker execution {b.source} ({fill_text(b)} at {local_time(b.ts, self.tz)}) is "
            f"{what} at {f.source}{order}: counted once{was}{price}",
        )

    def _across_exports(self, candidates: list[Key]) -> list[Key]:
        """Drop an execution another export already holds (two exports of one account)."""
        unshared = set(candidates)
        index: dict[tuple[str, int], list[tuple[int, Key]]] = {}
        for k in self.broker_fills:
            f = self.fill(k)
            index.setdefault((f.symbol, f.side), []).append((f.ts, k))
        for rows in index.values():
            rows.sort()
        widest = max(s.resolution for s in self.sources) + FILL_WINDOW_NS
        left = []
        for k in candidates:
            b = self.fill(k)
            rows = index.get((b.symbol, b.side), [])
            lo = bisect_left(rows, (b.ts - widest,))
            hi = bisect_right(rows, (b.ts + widest + 1,))
            twin = next(
                (
                    other
                    for _, other in rows[lo:hi]
                    if other[0] != k[0]
                    and other not in self.dropped
                    and _same(self.fill(other), b)
                    and (other not in unshared or other[0] < k[0])
                ),
                None,
            )
            if twin is None:
                left.append(k)
                continue
            self.note(
                k,
                "FILLS_MATCHED",
                f"broker execution {b.source} ({fill_text(b)} at {local_time(b.ts, self.tz)}) "
                f"is {self.fill(twin).source} of another export: counted once, from that",
            )
            self.dropped.add(k)
        return left

    # ---- 3. to the bot's orders -----------------------------------------------------------
    def _to_intents(self, candidates: list[Key]) -> list[Key]:
        """Executions still unmatched -> the bot's orders with quantity left to fill."""
        filled: dict[str, float] = {}
        for k in self.broker_fills + self.log_fills:
            oid = self.fill(k).order_id
            if k not in self.dropped and oid is not None:
                filled[oid] = filled.get(oid, 0.0) + self.fill(k).qty
        first: dict[str, OrderIntent] = {}
        for p, s in enumerate(self.sources):
            for e in self.events[p] if not s.broker else ():
                oid = e.order_id if isinstance(e, OrderIntent) else None
                if oid is not None and (oid not in first or e.ts < first[oid].ts):
                    first[oid] = cast(OrderIntent, e)
        open_qty: dict[str, float] = {}
        for oid, i in first.items():
            if i.qty is None:  # no size logged: open until anything fills it
                open_qty[oid] = 0.0 if oid in filled else float("inf")
            else:
                open_qty[oid] = i.qty - filled.get(oid, 0.0)
        intents = sorted(first.values(), key=lambda e: e.ts)
        stamps = [i.ts for i in intents]
        left = []
        for k in candidates:
            b = self.fill(k)
            res = self.sources[k[0]].resolution
            best = None
            for i in intents[bisect_left(stamps, b.ts - INTENT_WINDOW_NS) :]:
                if i.ts >= b.ts + max(res, 1):
                    break
                if (
                    i.symbol == b.symbol
                    and i.side == b.side
                    and open_qty[i.order_id or ""] >= b.qty - 1e-9 * max(1.0, b.qty)
                ):
                    best = i
            if best is None or best.order_id is None:
                left.append(k)
                continue
            open_qty[best.order_id] -= b.qty
            self.events[k[0]][k[1]] = dataclasses.replace(b, order_id=best.order_id)
            was = f"; the export names order {b.order_id}" if b.order_id else ""
            self.note(
                k,
                "FILLS_MATCHED",
                f"broker execution {b.source} ({fill_text(b)} at {local_time(b.ts, self.tz)}) "
                f"fills the bot's order {best.order_id} ({best.source}){was}",
            )
        return left

    def _report_unmatched(self, candidates: list[Key]) -> None:
        for k in candidates:
            b = self.fill(k)
            self.note(
                k,
                "UNMATCHED_FILLS",
                f"broker execution {b.source} ({fill_text(b)} at {local_time(b.ts, self.tz)}) "
                "matches no order or fill in the bot's logs; kept as the broker's",
            )
        for k in self.log_fills:
            if k not in self.dropped:
                f = self.fill(k)
                self.note(
                    k,
                    "UNMATCHED_FILLS",
                    f"bot-reported fill {f.source} ({fill_text(f)} at "
                    f"{local_time(f.ts, self.tz)}) has no execution in the broker exports; kept",
                )


def _adding_up(keys: list[Key], fill: Callable[[Key], BrokerFill], qty: float) -> list[Key] | None:
    """The first keys (in the given order) whose quantities add up to ``qty``: two or more,
    else ``None``."""
    total = 0.0
    for n, k in enumerate(keys, start=1):
        total += fill(k).qty
        if _close(total, qty):
            return keys[:n] if n > 1 else None
        if total > qty:
            return None
    return None


def _same(a: BrokerFill, b: BrokerFill) -> bool:
    return a.side == b.side and _close(a.qty, b.qty) and _close(a.price, b.price)
