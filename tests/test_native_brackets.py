"""Native brackets at submit: at a broker that takes an entry with its legs attached (Alpaca's
bracket / OTO, IB's parent and children), an entry whose protective levels are prices goes
out with its stop and target, so the broker protects the position from the first fill on.

The bracket manager's rules for such legs, on a mirror it drives by hand:

- the entry carries its legs (the same client ids as legs placed on the fill would have);
  levels priced from the fill (percent, trailing) or a stop entry keep the legs-on-fill path;
- while the entry works, the legs are the broker's (it holds them and sizes them to the
  entry's fills): no fill of the entry grows or fits them, a stop move skips them and they
  count as no protection;
- an exit that cancels a partly filled entry fits its legs to what it leaves (the broker
  frees them for what filled); an entry with no fill takes its legs with it;
- legs the broker no longer holds are replaced by a pair of the core's own.
"""

from __future__ import annotations

import math

import pytest

from backstop.domain.commands import AmendOrder, CancelOrder, SubmitOrder
from backstop.domain.enums import OrderRole, OrderType, Side
from backstop.domain.events import Execution, OrderUpdate, OrderUpdateKind
from backstop.domain.orders import client_order_id
from backstop.engine.brackets import BracketManager, EntryPlan, Venue
from backstop.engine.core.codes import R_ENTRY_REMAINDER_CANCELED, R_LEG_CANCELED_FLAT
from backstop.engine.mirror import BrokerMirror

NATIVE = Venue(reduce_only=False, native_brackets=True)


def manager(venue: Venue = NATIVE) -> BracketManager:
    return BracketManager("nb", {"AAPL": 0.01}, {"AAPL": 1.0}, venue)


def plan(cycle: int = 1, qty: float = 10, **kw: object) -> EntryPlan:
    levels: dict[str, object] = {"stop_price": 98.0, "target_price": 104.0}
    levels.update(kw)
    return EntryPlan(cycle, 0, "AAPL", Side.BUY, qty, ref_price=100.0, ts=1, bar=0, **levels)  # type: ignore[arg-type]


def fill(cid: str, qty: float, leaves: float, n: int, price: float = 100.0) -> Execution:
    return Execution(cid, f"x{n}", "AAPL", Side.BUY, qty, price, 0.0, leaves, 10 + n, 10 + n)


def sent(bm: BracketManager, mirror: BrokerMirror, p: EntryPlan) -> SubmitOrder:
    (order,) = bm.entry(p)
    mirror.sent(order)
    return order


def test_an_entry_with_price_levels_goes_out_with_its_legs_attached() -> None:
    bm, mirror = manager(), BrokerMirror()
    order = sent(bm, mirror, plan())
    stop, target = order.legs
    assert (stop.role, stop.order_type, stop.stop_price) == (
        OrderRole.STOP_LOSS, OrderType.STOP, 98.0,
    )  # fmt: skip
    assert (target.role, target.order_type, target.limit_price) == (
        OrderRole.TAKE_PROFIT, OrderType.LIMIT, 104.0,
    )  # fmt: skip
    # the ids legs placed on the fill would have had: a restart that decides again sends them
    assert stop.client_order_id == client_order_id("nb", 1, OrderRole.STOP_LOSS, 1)
    assert target.client_order_id == client_order_id("nb", 1, OrderRole.TAKE_PROFIT, 2)
    for leg in order.legs:
        assert leg.qty == 10 and leg.side == Side.SELL and leg.reduce_only
        assert leg.parent_id == order.client_order_id and leg.oco_group == stop.oco_group
        assert leg.ts == order.ts and leg.bar == order.bar
    assert mirror.orders[stop.client_order_id].parent_id == order.client_order_id


@pytest.mark.parametrize(
    "levels",
    [
        {"stop_price": math.nan, "target_price": math.nan, "stop_pct": 0.01, "target_pct": 0.02},
        {"stop_price": math.nan, "target_price": math.nan, "trail_pct": 0.02},
        {"target_price": math.nan, "target_pct": 0.02},  # one level priced from the fill
        {"order_type": OrderType.STOP, "entry_stop_price": 101.0},  # no bracket on a stop entry
    ],
)
def test_levels_priced_from_the_fill_keep_the_legs_on_fill_path(levels: dict) -> None:
    bm = manager()
    (order,) = bm.entry(plan(**levels))
    assert order.legs == () and not bm.plans[order.client_order_id].native


def test_the_simulator_takes_no_native_legs() -> None:
    (order,) = manager(Venue(reduce_only=True)).entry(plan())
    assert order.legs == ()


def test_fills_of_the_entry_leave_the_legs_to_the_broker() -> None:
    """A partial fill, then the rest: no amend, no fit, no second pair (the broker holds the
    legs until the entry fills and sizes them to its fills)."""
    bm, mirror = manager(), BrokerMirror()
    order = sent(bm, mirror, plan())
    for n, (qty, leaves) in enumerate(((4.0, 6.0), (6.0, 0.0))):
        ex = fill(order.client_order_id, qty, leaves, n)
        mirror.apply(ex)
        assert bm.on_execution(mirror, ex, bar=1 + n) == []
    assert mirror.position("AAPL") == 10 and mirror.protective_qty("AAPL") == 10


def test_legs_held_for_an_entry_without_fill_are_no_protection_and_no_stop_to_move() -> None:
    bm, mirror = manager(), BrokerMirror()
    sent(bm, mirror, plan())
    assert mirror.protective_qty("AAPL") == 0.0
    assert bm.stop_leg(mirror, "AAPL") is None
    assert bm.stop_move(mirror, "AAPL", 99.0, 5, 0) is None


def test_an_exit_while_the_entry_is_partly_filled_frees_and_cancels_its_legs() -> None:
    """The exit cancels the entry's remainder; the broker then frees the legs for the 4
    filled, which the exit closes: they are cancelled in the same breath, before the exit,
    so the legs and the exit together never sell more than is held."""
    bm, mirror = manager(), BrokerMirror()
    order = sent(bm, mirror, plan())
    ex = fill(order.client_order_id, 4.0, 6.0, 0)
    mirror.apply(ex)
    assert bm.on_execution(mirror, ex, bar=1) == []
    out = bm.exit(mirror, cycle=1, strategy=0, symbol="AAPL", side=Side.SELL, qty=4.0,
                  role=OrderRole.SIGNAL_EXIT, ts=20, bar=2)  # fmt: skip
    stop, target = order.legs
    assert [type(c) for c in out] == [CancelOrder, CancelOrder, CancelOrder, SubmitOrder]
    assert out[0] == CancelOrder(order.client_order_id, 20, int(R_ENTRY_REMAINDER_CANCELED))
    assert {c.client_order_id for c in out[1:3]} == {stop.client_order_id, target.client_order_id}
    assert all(c.reasons == int(R_LEG_CANCELED_FLAT) for c in out[1:3])  # type: ignore[union-attr]
    assert out[3].qty == 4.0 and out[3].reduce_only  # type: ignore[union-attr]


def test_an_exit_leaving_part_of_the_position_shrinks_the_freed_legs() -> None:
    bm, mirror = manager(), BrokerMirror()
    order = sent(bm, mirror, plan())
    ex = fill(order.client_order_id, 4.0, 6.0, 0)
    mirror.apply(ex)
    out = bm.exit(mirror, cycle=1, strategy=0, symbol="AAPL", side=Side.SELL, qty=1.0,
                  role=OrderRole.SIGNAL_EXIT, ts=20, bar=2)  # fmt: skip
    amends = [c for c in out if isinstance(c, AmendOrder)]
    assert sorted(a.client_order_id for a in amends) == sorted(
        leg.client_order_id for leg in order.legs
    )
    assert all(a.qty == 3.0 for a in amends)  # 4 held, 1 closing: the legs keep 3


def test_an_exit_of_an_older_position_leaves_a_pending_entrys_legs_to_go_with_it() -> None:
    """A pending entry (no fill) of another cycle is cancelled by the exit; its held legs go
    with it at the broker, so the core sends them no cancel of its own."""
    bm, mirror = manager(), BrokerMirror()
    first = sent(bm, mirror, plan(cycle=1, qty=5))
    ex = fill(first.client_order_id, 5.0, 0.0, 0)
    mirror.apply(ex)
    second = sent(bm, mirror, plan(cycle=2, qty=5, order_type=OrderType.LIMIT, limit_price=95.0))
    out = bm.exit(mirror, cycle=1, strategy=0, symbol="AAPL", side=Side.SELL, qty=5.0,
                  role=OrderRole.SIGNAL_EXIT, ts=20, bar=2)  # fmt: skip
    cancelled = [c.client_order_id for c in out if isinstance(c, CancelOrder)]
    assert second.client_order_id in cancelled
    assert not {leg.client_order_id for leg in second.legs} & set(cancelled)
    assert {leg.client_order_id for leg in first.legs} <= set(cancelled)  # freed by the exit


def test_legs_the_broker_no_longer_holds_are_replaced_by_a_pair_of_the_cores_own() -> None:
    """The broker cancelled the held legs (e.g. refused them); the entry's fill then gets a
    fresh OCO pair, which the next fill grows by amend as on the legs-on-fill path."""
    bm, mirror = manager(), BrokerMirror()
    order = sent(bm, mirror, plan())
    for leg in order.legs:
        mirror.apply(OrderUpdate(OrderUpdateKind.CANCELED, leg.client_order_id, 5, 5))
    ex = fill(order.client_order_id, 4.0, 6.0, 0)
    mirror.apply(ex)
    (pair,) = bm.on_execution(mirror, ex, bar=3)
    assert isinstance(pair, SubmitOrder) and pair.qty == 4.0 and len(pair.siblings) == 1
    assert pair.client_order_id not in {leg.client_order_id for leg in order.legs}
    mirror.sent(pair)
    more = fill(order.client_order_id, 6.0, 0.0, 1)
    mirror.apply(more)
    grown = bm.on_execution(mirror, more, bar=4)
    assert [(type(c), c.qty) for c in grown] == [(AmendOrder, 10.0), (AmendOrder, 10.0)]  # type: ignore[union-attr]


def test_the_plan_survives_a_restart_with_its_native_mark() -> None:
    bm, mirror = manager(), BrokerMirror()
    order = sent(bm, mirror, plan())
    again = manager()
    again.restore(bm.to_dict())
    assert again.plans[order.client_order_id].native
    ex = fill(order.client_order_id, 10.0, 0.0, 0)
    mirror.apply(ex)
    assert again.on_execution(mirror, ex, bar=1) == []


def test_a_bracket_that_did_its_work_gets_no_second_pair() -> None:
    """After a restart the broker's reports come in one batch: the entry filled, its stop
    filled and the broker cancelled the target, all before the core reacts to the entry's
    fill. The legs are no longer working, but they did their work: no fresh pair."""
    bm, mirror = manager(), BrokerMirror()
    order = sent(bm, mirror, plan())
    stop, target = order.legs
    ex = fill(order.client_order_id, 10.0, 0.0, 0)
    mirror.apply(ex)
    mirror.apply(Execution(stop.client_order_id, "s1", "AAPL", Side.SELL, 10.0, 98.0, 0.0, 0.0,
                           11, 11))  # fmt: skip
    mirror.apply(OrderUpdate(OrderUpdateKind.CANCELED, target.client_order_id, 11, 11))
    assert [c for c in bm.on_execution(mirror, ex, bar=1) if isinstance(c, SubmitOrder)] == []


def test_a_fresh_pair_after_dropped_legs_covers_all_the_entry_filled() -> None:
    bm, mirror = manager(), BrokerMirror()
    order = sent(bm, mirror, plan())
    first = fill(order.client_order_id, 4.0, 6.0, 0)
    mirror.apply(first)
    assert bm.on_execution(mirror, first, bar=1) == []
    for leg in order.legs:
        mirror.apply(OrderUpdate(OrderUpdateKind.CANCELED, leg.client_order_id, 12, 12))
    more = fill(order.client_order_id, 2.0, 4.0, 1)
    mirror.apply(more)
    (pair,) = bm.on_execution(mirror, more, bar=2)
    assert isinstance(pair, SubmitOrder) and pair.qty == 6.0  # the 4 before and the 2 now


def test_a_target_cancelled_before_its_stops_fill_is_read_leaves_the_stop_to_protect() -> None:
    """Recovered reports in the order a restart reads them: the broker's cancel of the target
    (stamped at the last bar the runner saw) before the stop's fill (at its own bar). At the
    entry's fill the stop still works: it protects, and no fresh pair is placed."""
    bm, mirror = manager(), BrokerMirror()
    order = sent(bm, mirror, plan())
    mirror.apply(OrderUpdate(OrderUpdateKind.CANCELED, order.legs[1].client_order_id, 5, 5))
    ex = fill(order.client_order_id, 10.0, 0.0, 0)
    mirror.apply(ex)
    assert bm.on_execution(mirror, ex, bar=1) == []


def test_reprotect_places_a_fresh_pair_from_the_plan_for_what_lacks_cover() -> None:
    """A reconcile found the position unprotected (its legs cancelled behind the bot's
    back): the runner asks for a fresh pair for the uncovered quantity from the plan."""
    bm, mirror = manager(), BrokerMirror()
    order = sent(bm, mirror, plan())
    ex = fill(order.client_order_id, 10.0, 0.0, 0)
    mirror.apply(ex)
    for leg in order.legs:
        mirror.apply(OrderUpdate(OrderUpdateKind.CANCELED, leg.client_order_id, 12, 12))
    (pair,) = bm.reprotect(mirror.orders[order.client_order_id], 10.0, 30, 7)
    assert isinstance(pair, SubmitOrder) and pair.role == OrderRole.STOP_LOSS
    assert (pair.qty, pair.stop_price, pair.siblings[0].limit_price) == (10.0, 98.0, 104.0)
    assert pair.client_order_id not in {leg.client_order_id for leg in order.legs}
    assert bm.reprotect(mirror.orders[order.client_order_id], 0.0, 30, 7) == []
