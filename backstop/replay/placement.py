"""Fills in time: a fill never precedes the order that caused it (crossmatch.py, step 4).

Sources stamp at different resolutions: IBKR exports to the whole second, bot logs to the
millisecond (some to the second). A fill (a broker's or one the log reports) stamped at or
before the time of the bot's first ``order_intent`` of its order id is placed just after
that order: at the bot's own report of the fill when that lies inside the stamp's
resolution, else 1 ns after the order (a broker fill stamped earlier than its resolution
allows means the clocks disagree, and the note says so). A whole-second fill of no
logged order that shares its second with a log event of its symbol is placed at the end of
that second. Each placement is an ``ORDERING_INFERRED`` inference.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_left
from typing import TYPE_CHECKING, cast

from backstop.replay.events import BrokerFill, Event, OrderIntent
from backstop.replay.timeline import Inference
from backstop.replay.window import local_time

if TYPE_CHECKING:
    from backstop.replay.crossmatch import Source

SECOND_NS = 1_000_000_000
Key = tuple[int, int]
"""A fill of a scenario's sources: (source index, event index)."""


def fill_text(f: BrokerFill) -> str:
    """A fill as the report writes it: ``BUY 1 ESZ5 @ 6890.5``."""
    return f"{'BUY' if f.side > 0 else 'SELL'} {f.qty:g} {f.symbol} @ {f.price:g}"


class FillPlacement:
    """Step 4 of the reconciliation, on the reconciler's state (crossmatch._Reconcile)."""

    sources: list[Source]
    events: list[list[Event]]
    dropped: set[Key]
    bot_ts: dict[Key, int]
    broker_fills: list[Key]
    log_fills: list[Key]
    notes: list[list[Inference]]
    tz: str

    def fill(self, key: Key) -> BrokerFill:
        """The fill at ``key`` (source index, event index)."""
        return cast(BrokerFill, self.events[key[0]][key[1]])

    def note(self, key: Key, kind: str, text: str) -> None:
        """Report what was inferred about the fill at ``key``, under its source."""
        f = self.fill(key)
        self.notes[key[0]].append(Inference(kind, f.ts, f.source, text, f.order_id))

    def place_fills(self) -> None:
        """Place each fill after its order, or a whole-second one at the end of a shared
        second (module doc). Fills the logs report are placed too: a log that stamps whole
        seconds can give an order and its fill one time stamp."""
        placed: dict[str, Event] = {}  # order id -> the bot's first intent of it
        for s in self.sources:
            for e in s.part.of(OrderIntent) if not s.broker else ():
                oid = e.order_id
                if oid is not None and (oid not in placed or e.ts < placed[oid].ts):
                    placed[oid] = e
        coarse = any(self.sources[k[0]].resolution > 0 for k in self.broker_fills)
        logged = self._logged_by_symbol() if coarse else {}
        for k in self.broker_fills + self.log_fills:
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

    def _logged_by_symbol(self) -> dict[str, list[tuple[int, str]]]:
        """Symbol -> sorted (ts, source) of the logs' events still in the timeline."""
        logged: dict[str, list[tuple[int, str]]] = {}
        for p, s in enumerate(self.sources):
            if s.broker:
                continue
            for i, e in enumerate(self.events[p]):
                symbol = getattr(e, "symbol", None)
                if symbol is not None and (p, i) not in self.dropped:
                    logged.setdefault(symbol, []).append((e.ts, e.source))
        for rows in logged.values():
            rows.sort()
        return logged

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
        elif b.ts == order.ts:
            text = (
                f"fill of order {b.order_id} ({b.source}) carries the time stamp of its order "
                f"({order.source}): placed just after it, at {at}"
            )
        else:
            clocks = ": the clocks disagree" if self.sources[k[0]].broker else ""
            text = (
                f"fill of order {b.order_id} ({b.source}) is stamped "
                f"{(order.ts - b.ts) / SECOND_NS:.3f} s before its order ({order.source})"
                f"{clocks}; placed after the order, at {at}"
            )
        self.note(k, "ORDERING_INFERRED", text)

    def _end_of_second(self, k: Key, res: int, other: str) -> None:
        b = self.fill(k)
        ts = b.ts + res - 1
        self.events[k[0]][k[1]] = dataclasses.replace(b, ts=ts)
        self.note(
            k,
            "ORDERING_INFERRED",
            f"broker execution {b.source} ({fill_text(b)}, stamped "
            f"{local_time(b.ts, self.tz, fraction=False)}, whole seconds) belongs to no logged "
            f"order and shares its second with {other}: placed at the end of that second",
        )
