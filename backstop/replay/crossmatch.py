"""Fills across sources: each execution counted once, and never before the order behind it.

A scenario folder may hold the bot's log (which often reports its own fills) next to a
broker export (the truth about fills). ``reconcile`` joins them in four steps:

1. **By order id.** A fill the log reported for an order id that a broker export also fills
   is dropped from the log's side, with a warning naming both.
2. **Without a shared id.** A broker execution without an order id (an IBKR Activity
   Statement's trades), or with one no log names, is matched to a fill the bot reported:
   same symbol, side and quantity, the nearest in time within ``FILL_WINDOW_NS`` of the
   broker's stamp (the stamp covers its whole second for a whole-second export); an equal
   price first, then any price (the broker's is kept and the difference reported). The
   bot's fill is dropped and the broker's takes the bot's order id. One still unmatched
   that another export holds too (same symbol, side, quantity and price within the window:
   two exports of one account) is dropped in favour of that one.
3. **To the bot's orders.** A broker execution still unmatched is matched to an order the
   bot logged (``order_intent`` with an id and no fill yet): same symbol, side and quantity
   (or an intent without one), placed at most ``INTENT_WINDOW_NS`` before the execution;
   the latest such order. The execution takes its order id.
4. **Order in time.** A fill can never precede the order that caused it. IBKR stamps
   executions to the whole second, bot logs to the millisecond: a fill stamped at or before
   its order's time (the bot's first ``order_intent`` of that id) is placed just after it
   (at the bot's own report of the fill when that lies inside the stamp's second, else 1 ns
   after the order); beyond the stamp's resolution the clocks disagree, and the report says
   so too. A whole-second fill of no
   order in the logs that shares its second with a log event of its symbol is placed at the
   end of that second.

Everything inferred becomes an ``Inference`` the report shows: ``ORDERING_INFERRED``,
``FILLS_MATCHED`` and ``UNMATCHED_FILLS`` (broker executions of no logged order or fill, and
fills the bot reported that no broker export shows: both kept, neither silently).
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import cast

from backstop.replay.events import BrokerFill, BrokerOrder, Event, OrderIntent
from backstop.replay.timeline import Incident, Inference, ParseWarning, sort_events
from backstop.replay.window import local_time

SECOND_NS = 1_000_000_000
FILL_WINDOW_NS = 5 * SECOND_NS
"""A bot-reported fill and a broker execution without a shared id match within this window."""
INTENT_WINDOW_NS = 60 * SECOND_NS
"""A broker execution without a shared id fills a bot order placed at most this long before."""

Key = tuple[int, int]  # (source index, event index)


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


def _fill_text(f: BrokerFill) -> str:
    return f"{'BUY' if f.side > 0 else 'SELL'} {f.qty:g} {f.symbol} @ {f.price:g}"


class _Reconcile:
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

    def fill(self, key: Key) -> BrokerFill:
        return cast(BrokerFill, self.events[key[0]][key[1]])

    def note(self, key: Key, kind: str, text: str) -> None:
        f = self.fill(key)
        self.notes[key[0]].append(Inference(kind, f.ts, f.source, text, f.order_id))

    def run(self) -> list[Incident]:
        if not self.broker_fills:  # the logs alone: nothing to join or to place
            return [s.part for s in self.sources]
        self._by_order_id()
        unmatched = self._by_fields()
        unmatched = self._across_exports(unmatched)
        unmatched = self._to_intents(unmatched)
        self._report_unmatched(unmatched)
        self._order_in_time()
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
        return [k for k in candidates if k not in matched]

    def _nearest_log_fill(
        self, k: Key, index: dict[tuple[str, int], list[tuple[int, Key]]], exact: bool
    ) -> Key | None:
        b = self.fill(k)
        res = self.sources[k[0]].resolution
        rows = index.get((b.symbol, b.side), [])
        lo = bisect_left(rows, (b.ts - FILL_WINDOW_NS,))
        hi = bisect_right(rows, (b.ts + res + FILL_WINDOW_NS + 1,))
        best: tuple[int, Key] | None = None
        for ts, log in rows[lo:hi]:
            f = self.fill(log)
            if log in self.dropped or not _close(f.qty, b.qty):
                continue
            if exact and not _close(f.price, b.price):
                continue
            inside = b.ts <= ts < b.ts + max(res, 1)
            gap = 0 if inside else min(abs(ts - b.ts), abs(ts - b.ts - res))
            if gap <= FILL_WINDOW_NS and (best is None or gap < best[0]):
                best = (gap, log)
        return None if best is None else best[1]

    def _take(self, k: Key, log: Key) -> None:
        b, f = self.fill(k), self.fill(log)
        self.dropped.add(log)
        self.bot_ts[k] = f.ts
        self.events[k[0]][k[1]] = dataclasses.replace(b, order_id=f.order_id or b.order_id)
        order = f" (order {f.order_id})" if f.order_id else ""
        was = f"; the export names order {b.order_id}" if b.order_id else ""
        price = ""
        if not _close(f.price, b.price):
            price = f"; prices differ, kept the broker's, not {f.price:g}"
        self.note(
            k,
            "FILLS_MATCHED",
            f"broker execution {b.source} ({_fill_text(b)} at {local_time(b.ts, self.tz)}) is "
            f"the fill the bot reported at {f.source}{order}: counted once{was}{price}",
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
                f"broker execution {b.source} ({_fill_text(b)} at {local_time(b.ts, self.tz)}) "
                f"is {self.fill(twin).source} of another export: counted once, from that",
            )
            self.dropped.add(k)
        return left

    # ---- 3. to the bot's orders -----------------------------------------------------------
    def _to_intents(self, candidates: list[Key]) -> list[Key]:
        filled = {
            self.fill(k).order_id
            for k in self.broker_fills + self.log_fills
            if k not in self.dropped and self.fill(k).order_id is not None
        }
        intents: list[OrderIntent] = [
            e
            for p, s in enumerate(self.sources)
            if not s.broker
            for e in self.events[p]
            if isinstance(e, OrderIntent) and e.order_id is not None and e.order_id not in filled
        ]
        intents.sort(key=lambda e: e.ts)
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
                    i.order_id not in filled
                    and i.symbol == b.symbol
                    and i.side == b.side
                    and (i.qty is None or _close(i.qty, b.qty))
                    and b.ts - i.ts <= INTENT_WINDOW_NS
                ):
                    best = i
            if best is None:
                left.append(k)
                continue
            filled.add(best.order_id)
            self.events[k[0]][k[1]] = dataclasses.replace(b, order_id=best.order_id)
            was = f"; the export names order {b.order_id}" if b.order_id else ""
            self.note(
                k,
                "FILLS_MATCHED",
                f"broker execution {b.source} ({_fill_text(b)} at {local_time(b.ts, self.tz)}) "
                f"fills the bot's order {best.order_id} ({best.source}){was}",
            )
        return left

    def _report_unmatched(self, candidates: list[Key]) -> None:
        for k in candidates:
            b = self.fill(k)
            self.note(
                k,
                "UNMATCHED_FILLS",
                f"broker execution {b.source} ({_fill_text(b)} at {local_time(b.ts, self.tz)}) "
                "matches no order or fill in the bot's logs; kept as the broker's",
            )
        for k in self.log_fills:
            if k not in self.dropped:
                f = self.fill(k)
                self.note(
                    k,
                    "UNMATCHED_FILLS",
                    f"bot-reported fill {f.source} ({_fill_text(f)} at "
                    f"{local_time(f.ts, self.tz)}) has no execution in the broker exports; kept",
                )

    # ---- 4. order in time -----------------------------------------------------------------
    def _order_in_time(self) -> None:
        placed: dict[str, Event] = {}  # order id -> the bot's first intent of it
        logged: dict[str, list[tuple[int, str]]] = {}  # symbol -> (ts, source) of log events
        for p, s in enumerate(self.sources):
            if s.broker:
                continue
            for i, e in enumerate(self.events[p]):
                oid = e.order_id if isinstance(e, OrderIntent) else None
                if oid is not None and (oid not in placed or e.ts < placed[oid].ts):
                    placed[oid] = e
                symbol = getattr(e, "symbol", None)
                if symbol is not None and (p, i) not in self.dropped:
                    logged.setdefault(symbol, []).append((e.ts, e.source))
        for rows in logged.values():
            rows.sort()
        for k in self.broker_fills:
            if k in self.dropped:
                continue
            b = self.fill(k)
            res = self.sources[k[0]].resolution
            order = placed.get(b.order_id) if b.order_id is not None else None
            if order is not None and b.ts <= order.ts:
                self._after_order(k, order, res)
            elif order is None and res > 0:
                rows = logged.get(b.symbol, [])
                lo, hi = bisect_left(rows, (b.ts,)), bisect_left(rows, (b.ts + res,))
                if lo < hi:
                    self._end_of_second(k, res, rows[hi - 1][1])

    def _after_order(self, k: Key, order: Event, res: int) -> None:
        b = self.fill(k)
        mine = self.bot_ts.get(k)
        ts = mine if mine is not None and order.ts < mine < b.ts + res else order.ts + 1
        self.events[k[0]][k[1]] = dataclasses.replace(b, ts=ts)
        at = local_time(ts, self.tz)
        if order.ts < b.ts + res:
            text = (
                f"fill of order {b.order_id} ({b.source}, stamped "
                f"{local_time(b.ts, self.tz, fraction=False)} to the whole second) placed after "
                f"its order ({order.source} at {local_time(order.ts, self.tz)}): at {at}"
            )
        else:
            text = (
                f"fill of order {b.order_id} ({b.source}) is stamped "
                f"{(order.ts - b.ts) / SECOND_NS:.3f} s before its order ({order.source}): the "
                f"clocks disagree; placed after the order, at {at}"
            )
        self.note(k, "ORDERING_INFERRED", text)

    def _end_of_second(self, k: Key, res: int, other: str) -> None:
        b = self.fill(k)
        ts = b.ts + res - 1
        self.events[k[0]][k[1]] = dataclasses.replace(b, ts=ts)
        self.note(
            k,
            "ORDERING_INFERRED",
            f"broker execution {b.source} ({_fill_text(b)}, stamped "
            f"{local_time(b.ts, self.tz, fraction=False)}, whole seconds) belongs to no logged "
            f"order and shares its second with {other}: placed at the end of that second",
        )


def _same(a: BrokerFill, b: BrokerFill) -> bool:
    return a.side == b.side and _close(a.qty, b.qty) and _close(a.price, b.price)
