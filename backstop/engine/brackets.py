"""The bracket manager: approved decisions and broker fills in, order commands out.

It is the one place that knows what a bracket is, for every broker: the simulator, a fake
and the live adapters all receive the same commands and only match or translate them.

- An approved entry becomes its entry order (two for a scale-in: half now, half as a limit
  ``scale_in_pct`` back from the decision price). Its protective levels are remembered.
- At a broker that takes native brackets (``Venue.native_brackets``: Alpaca's bracket / OTO,
  IB's parent and children), a market or limit entry whose levels are prices known at
  submit goes out with its stop and target attached as ``legs``: the broker holds them until
  the entry fills and sizes them to its fills, so no fill is ever unprotected for a round
  trip. While their entry is working such legs are the broker's: the core neither grows nor
  fits them (an exit that cancels the entry fits them, as the broker then frees them for
  what filled).
- Otherwise, when an entry fills (in part or whole) its filled quantity gets protection at
  once: a stop (or trailing stop) and a take-profit in one OCO group, priced from the
  entry's average fill when the levels are fractions, rounded to the tick; a further fill
  grows the pair by amend; a pair already gone is replaced by a fresh one with new client
  ids (also for native legs the broker no longer holds).
- When a protective order fills, the rest of its OCO group is cancelled, the entry's
  unfilled remainder is cancelled (a later fill would be unprotected) and, if the position
  is closed, so are the cycle's other working entries (a scale-in add).
- After every fill, working reduce-only orders are fitted to the position: cancelled when it
  is flat or on their side, shrunk when they would close more than is held. At a broker
  that does not enforce reduce-only, the protective orders are fitted to what the working
  exits leave, as when an exit is sent.
- An approved exit cancels the symbol's working entries and sends a reduce-only market
  order. At a broker that does not enforce reduce-only itself (``Venue.reduce_only`` False:
  Alpaca, IB), the protective orders are first shrunk by the exit's quantity, so the exit
  and the legs together never exceed the position even if all of them fill.
- A strategy's stop line moves the oldest working stop leg (the caller decided it tightens).

Client ids come from the one formula (``client_order_id``) and the leg-number rule beside
``FIRST_FREE_LEG_NO``: 0 for the entry, 1-2 its legs, 3 a scale-in add, 4-5 its legs; an exit
or a replacement pair is numbered from its cycle and bar alone, so no id is ever reused and a
restarted runner that decides again sends the very same ids.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field, fields, replace
from typing import Any

from backstop.domain.commands import AmendOrder, CancelOrder, OrderCommand, SubmitOrder
from backstop.domain.enums import FIRST_FREE_LEG_NO, OrderRole, OrderType, Side, TimeInForce
from backstop.domain.events import Execution
from backstop.domain.orders import client_order_id
from backstop.engine.bracket_plan import (
    EntryPlan,
    Protection,
    Venue,
    last_amend_wins,
    levels_known_at_submit,
    round_level,
)
from backstop.engine.core.codes import (
    R_ENTRY_REMAINDER_CANCELED,
    R_LEG_CANCELED_FLAT,
    R_LEG_RESIZED,
    R_OCO_SIBLING_FILLED,
)
from backstop.engine.mirror import EPS, BrokerMirror, MirrorOrder

__all__ = ["STOP_ROLES", "BracketManager", "EntryPlan", "Protection", "Venue"]

STOP_ROLES = (OrderRole.STOP_LOSS, OrderRole.TRAILING)


@dataclass(slots=True)
class BracketManager:
    """Commands for entries, exits, fills and stop moves (see the module doc)."""

    run_id: str
    ticks: dict[str, float]
    lots: dict[str, float]
    venue: Venue = field(default_factory=Venue)
    plans: dict[str, Protection] = field(default_factory=dict)

    # ---- decisions ---------------------------------------------------------------------
    def entry(self, p: EntryPlan) -> list[SubmitOrder]:
        """The entry order(s) of an approved entry; protection follows its fills."""
        tick = self.ticks.get(p.symbol, 0.0)
        qty, add_qty = p.qty, 0.0
        lot = self.lots.get(p.symbol, 1.0) or 1.0
        if p.scale_in_pct > 0 and p.ref_price == p.ref_price:
            first = math.floor(p.qty / 2.0 / lot + 1e-9) * lot
            if first > 0 and p.qty - first > 0:
                qty, add_qty = first, p.qty - first
        otype = p.order_type if p.order_type != OrderType.TRAILING_STOP else OrderType.MARKET
        limit = p.limit_price if otype in (OrderType.LIMIT, OrderType.STOP_LIMIT) else math.nan
        trigger = p.entry_stop_price if otype in (OrderType.STOP, OrderType.STOP_LIMIT) else None
        out = [
            self._entry_order(
                p, 0, qty, otype, p.tif, round_level(limit, tick), round_level(trigger, tick)
            )
        ]
        if add_qty > 0:
            px = round_level(p.ref_price * (1.0 - int(p.side) * p.scale_in_pct), tick)
            out.append(self._entry_order(p, 3, add_qty, OrderType.LIMIT, TimeInForce.GTC, px, None))
        native = self.venue.native_brackets and levels_known_at_submit(p)
        for k, (order, seq) in enumerate(zip(out, (0, 3), strict=False)):
            plan = Protection(
                round_level(p.stop_price, tick) if p.stop_price == p.stop_price else math.nan,
                round_level(p.target_price, tick) if p.target_price == p.target_price else math.nan,
                p.stop_pct,
                p.target_pct,
                p.trail_pct,
                seq + 1,
            )
            self.plans[order.client_order_id] = plan
            if native and order.order_type in (OrderType.MARKET, OrderType.LIMIT):
                legs = self._pair(order, plan, order.qty, plan.stop, plan.target, seq + 1,
                                  f"{order.client_order_id}.{seq + 1}", p.ts, p.bar)  # fmt: skip
                plan.native = True
                out[k] = replace(order, legs=tuple(legs))
        return out

    def _entry_order(self, p, seq, qty, otype, tif, limit, stop) -> SubmitOrder:  # type: ignore[no-untyped-def]
        return SubmitOrder(
            client_order_id=client_order_id(self.run_id, p.cycle, OrderRole.ENTRY, seq),
            symbol=p.symbol,
            side=p.side,
            qty=qty,
            order_type=otype,
            tif=TimeInForce(tif),
            role=OrderRole.ENTRY,
            trade_cycle_id=p.cycle,
            strategy=p.strategy,
            limit_price=None if limit != limit else limit,
            stop_price=None if stop is None or stop != stop else stop,
            ts=p.ts,
            bar=p.bar,
        )

    def exit(
        self,
        mirror: BrokerMirror,
        *,
        cycle: int,
        strategy: int,
        symbol: str,
        side: Side,
        qty: float,
        role: OrderRole,
        ts: int,
        bar: int,
        reasons: int = 0,
    ) -> list[OrderCommand]:
        """An approved reduce-only market exit, after cancelling the symbol's working entries
        (an entry still filling after it would rebuild the position it closes)."""
        entries = [o.client_order_id for o in mirror.working(symbol) if o.role == OrderRole.ENTRY]
        out: list[OrderCommand] = [
            CancelOrder(cid, ts, int(R_ENTRY_REMAINDER_CANCELED) | reasons) for cid in entries
        ]
        if not self.venue.reduce_only:
            # the broker will not stop legs and exits together from crossing zero: leave the
            # legs only what the exits (working ones and this one) do not already close
            closing = sum(
                o.remaining for o in mirror.working(symbol) if o.reduce_only and not o.protective
            )
            left = max(abs(mirror.position(symbol)) - closing - qty, 0.0)
            out += self._fit(mirror, symbol, left, ts, set(entries), protective_only=True)
        seq = FIRST_FREE_LEG_NO + 2 * bar
        out.append(
            SubmitOrder(
                client_order_id=client_order_id(self.run_id, cycle, role, seq),
                symbol=symbol,
                side=side,
                qty=qty,
                order_type=OrderType.MARKET,
                tif=TimeInForce.GTC,
                role=role,
                trade_cycle_id=cycle,
                strategy=strategy,
                reduce_only=True,
                ts=ts,
                bar=bar,
            )
        )
        return out

    def stop_move(self, mirror: BrokerMirror, symbol: str, level: float, ts: int, reasons: int):  # type: ignore[no-untyped-def]
        """Move the symbol's oldest working stop leg to ``level`` (rounded to the tick)."""
        leg = self.stop_leg(mirror, symbol)
        if leg is None:
            return None
        tick = self.ticks.get(symbol, 0.0)
        return AmendOrder(
            leg.client_order_id, stop_price=round_level(level, tick), ts=ts, reasons=reasons
        )

    def stop_leg(self, mirror: BrokerMirror, symbol: str) -> MirrorOrder | None:
        """The symbol's oldest working stop leg that protects a position (not one the broker
        holds for an entry that has not filled)."""
        for o in mirror.working(symbol):
            if o.role in STOP_ROLES and not self.held(mirror, o):
                return o
        return None

    def held(self, mirror: BrokerMirror, leg: MirrorOrder, released: Collection[str] = ()) -> bool:
        """Whether ``leg`` is a native leg the broker holds for its working entry: the
        broker sizes it to the entry's fills, so the core leaves it alone. When the entry is
        ``released`` (cancelled in this same reaction) the broker frees the leg for what
        the entry filled, and the core fits it like any other; with nothing filled it goes
        with the entry."""
        if not leg.protective or not leg.parent_id:
            return False
        plan = self.plans.get(leg.parent_id)
        parent = mirror.orders.get(leg.parent_id)
        if plan is None or parent is None or not plan.native or not parent.working:
            return False
        if leg.client_order_id not in (plan.stop_leg, plan.target_leg):
            return False
        return leg.parent_id not in released or parent.filled <= EPS

    # ---- fills -------------------------------------------------------------------------
    def on_execution(self, mirror: BrokerMirror, ex: Execution, bar: int) -> list[OrderCommand]:
        """Commands a fill calls for (call after ``mirror.apply(ex)`` booked it); ``bar`` is
        the bar row the fill belongs to."""
        o = mirror.orders[ex.client_order_id]
        ts = ex.ts_event
        out: list[OrderCommand] = []
        going: set[str] = set()

        def cancel(target: MirrorOrder, why: int) -> None:
            if target.working and target.client_order_id not in going:
                going.add(target.client_order_id)
                out.append(CancelOrder(target.client_order_id, ts, why))

        if o.protective:
            if o.filled >= o.qty - EPS and o.oco_group:
                for other in mirror.working(o.symbol):
                    if other.oco_group == o.oco_group:
                        cancel(other, int(R_OCO_SIBLING_FILLED))
            parent = mirror.orders.get(o.parent_id) if o.parent_id else None
            if parent is not None:
                cancel(parent, int(R_ENTRY_REMAINDER_CANCELED))
            if mirror.position(o.symbol) == 0.0:
                for other in mirror.working(o.symbol):
                    if other.role == OrderRole.ENTRY and other.trade_cycle_id == o.trade_cycle_id:
                        cancel(other, int(R_ENTRY_REMAINDER_CANCELED))
        grown: dict[str, float] = {}
        if o.role == OrderRole.ENTRY:
            out += self._protect(mirror, o, ex.qty, ts, bar, grown)
        held = abs(mirror.position(o.symbol))
        if self.venue.reduce_only:
            out += self._fit(mirror, o.symbol, held, ts, going, grown)
        else:  # the exits and the legs together, never more than is held
            out += self._fit(mirror, o.symbol, held, ts, going, grown, exits_only=True)
            closing = sum(
                x.remaining
                for x in mirror.working(o.symbol)
                if x.reduce_only and not x.protective and x.client_order_id not in going
            )
            left = max(held - min(closing, held), 0.0)
            out += self._fit(mirror, o.symbol, left, ts, going, grown, protective_only=True)
        return last_amend_wins(out)

    def _protect(self, mirror, e, qty, ts, bar, grown) -> list[OrderCommand]:  # type: ignore[no-untyped-def]
        """Cover ``qty`` just filled of entry ``e``: grow its live legs, or place a pair."""
        plan = self.plans.get(e.client_order_id)
        if plan is None:
            return []
        legs = [mirror.orders.get(c) for c in (plan.stop_leg, plan.target_leg) if c]
        if legs and all(leg is not None and leg.working for leg in legs):
            if plan.native:
                return []  # attached at submit: the broker sizes them to the entry's fills
            out: list[OrderCommand] = []
            for leg in legs:
                assert leg is not None
                grown[leg.client_order_id] = leg.qty + qty
                out.append(AmendOrder(leg.client_order_id, qty=leg.qty + qty, ts=ts))
            return out
        if plan.native:
            # a leg still working protects, a filled one did its work (after a restart the
            # broker's reports are read in one batch: its OCO cancel may come before the fill)
            if any(leg is not None and (leg.working or leg.filled > EPS) for leg in legs):
                return []
            qty = e.filled  # the broker dropped the legs unfilled: cover all the entry filled
        return self._pair_command(e, plan, qty, ts, bar, fresh=bool(legs))

    def reprotect(self, e: MirrorOrder, qty: float, ts: int, bar: int) -> list[OrderCommand]:
        """A fresh stop and target pair for ``qty`` of the position entry ``e`` opened, from
        its plan (new client ids from the cycle and ``bar``): for a position a reconcile
        found unprotected, its legs gone at the broker. Nothing when no plan knows levels."""
        plan = self.plans.get(e.client_order_id)
        if plan is None or qty <= EPS:
            return []
        return self._pair_command(e, plan, qty, ts, bar, fresh=True)

    def _pair_command(self, e, plan, qty, ts, bar, fresh) -> list[OrderCommand]:  # type: ignore[no-untyped-def]
        """The pair protecting ``qty`` of entry ``e`` as one command (its siblings in it),
        levels priced from the entry's average fill where the plan has fractions; ``fresh``:
        a pair after the first, numbered from ``bar``."""
        fill = e.avg_fill
        stop = plan.stop
        if stop != stop and plan.stop_pct > 0:
            stop = fill * (1.0 - e.side * plan.stop_pct)
        target = plan.target
        if target != target and plan.target_pct > 0:
            target = fill * (1.0 + e.side * plan.target_pct)
        add = plan.first_leg_seq == 4  # a scale-in add's pair
        first = FIRST_FREE_LEG_NO + 2 * bar + add if fresh else plan.first_leg_seq
        plan.native = False  # a pair of the core's own: grown and fitted by it
        orders = self._pair(e, plan, qty, stop, target, first, f"{e.client_order_id}.{first}",
                            ts, fresh=fresh)  # fmt: skip
        if len(orders) <= 1:
            return [replace(o, oco_group=None) for o in orders]
        return [replace(orders[0], siblings=tuple(orders[1:]))]

    def _pair(self, e, plan, qty, stop, target, first, group, ts, bar=-1, fresh=False):  # type: ignore[no-untyped-def]
        """The stop (or trailing stop) and the take-profit protecting ``qty`` of entry ``e``
        (an entry order or its mirror), one OCO ``group``; remembered in ``plan``."""
        side = Side(-e.side)
        tick = self.ticks.get(e.symbol, 0.0)
        orders: list[SubmitOrder] = []
        if plan.trail_pct > 0 or stop == stop:
            trailing = plan.trail_pct > 0
            role = OrderRole.TRAILING if trailing else OrderRole.STOP_LOSS
            level = e.avg_fill * (1.0 + e.side * -plan.trail_pct) if trailing else stop
            orders.append(
                self._leg(e, side, qty, role, first, group, ts, stop=round_level(level, tick),
                          trail=plan.trail_pct if trailing else None, bar=bar)
            )  # fmt: skip
        if target == target:
            seq = first if fresh else first + 1
            orders.append(
                self._leg(e, side, qty, OrderRole.TAKE_PROFIT, seq, group, ts,
                          limit=round_level(target, tick), bar=bar)
            )  # fmt: skip
        plan.stop_leg = next((x.client_order_id for x in orders if x.role in STOP_ROLES), "")
        plan.target_leg = next(
            (x.client_order_id for x in orders if x.role == OrderRole.TAKE_PROFIT), ""
        )
        return orders

    def _leg(self, e, side, qty, role, seq, group, ts, stop=None, limit=None, trail=None, bar=-1):  # type: ignore[no-untyped-def]
        otype = {
            OrderRole.STOP_LOSS: OrderType.STOP,
            OrderRole.TRAILING: OrderType.TRAILING_STOP,
            OrderRole.TAKE_PROFIT: OrderType.LIMIT,
        }[role]
        return SubmitOrder(
            client_order_id=client_order_id(self.run_id, e.trade_cycle_id, role, seq),
            symbol=e.symbol,
            side=side,
            qty=qty,
            order_type=otype,
            tif=TimeInForce.GTC,
            role=role,
            trade_cycle_id=e.trade_cycle_id,
            strategy=e.strategy,
            stop_price=stop,
            limit_price=limit,
            trail_percent=trail,
            reduce_only=True,
            parent_id=e.client_order_id,
            oco_group=group,
            ts=ts,
            bar=bar,
        )

    def _fit(
        self, mirror, symbol, held, ts, skip, grown=None, protective_only=False, exits_only=False
    ):  # type: ignore[no-untyped-def]
        """Fit working reduce-only orders to ``held`` (the quantity that may still be closed):
        cancel them at zero or on the position's side, shrink the ones that would close more.
        ``grown`` holds quantities amended in this same reaction (not yet confirmed)."""
        grown = grown or {}
        pos = mirror.position(symbol)
        sign = 0 if held <= EPS else (1 if pos > 0 else -1)
        out: list[OrderCommand] = []
        for o in mirror.working(symbol):
            if not o.reduce_only or o.client_order_id in skip:
                continue
            if (protective_only and not o.protective) or (exits_only and o.protective):
                continue
            if self.held(mirror, o, skip):
                continue
            qty = grown.get(o.client_order_id, o.qty)
            if sign == 0 or o.side == sign:
                skip.add(o.client_order_id)
                out.append(CancelOrder(o.client_order_id, ts, int(R_LEG_CANCELED_FLAT)))
            elif qty - o.filled > held + EPS:
                resized = AmendOrder(
                    o.client_order_id, qty=o.filled + held, ts=ts, reasons=int(R_LEG_RESIZED)
                )
                out.append(resized)
        return out

    # ---- durability ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        # a shallow dict per plan (every field is a scalar): saved after every changed step
        names = [f.name for f in fields(Protection)]
        return {"plans": {k: {n: getattr(v, n) for n in names} for k, v in self.plans.items()}}

    def restore(self, data: dict[str, Any]) -> None:
        self.plans = {k: Protection(**v) for k, v in data["plans"].items()}
