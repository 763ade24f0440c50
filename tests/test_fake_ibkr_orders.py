"""Orders at the fake IBKR gateway, placed by the real ib_async client: brackets, OCA groups,
modify by re-placing, refusals, and positions with IB's avgCost (price x multiplier)."""

from __future__ import annotations

import pytest
from fake_ibkr_kit import advance, connect, es_tape, flat, sync
from ib_async import Future as IbFuture
from ib_async import LimitOrder, MarketOrder, PriceCondition, StopLimitOrder, StopOrder

from backstop.testing.fake_ibkr import FakeIBKR


def _es(ib):
    [contract] = ib.qualifyContracts(IbFuture("ES", "202512", "CME"))
    return contract


def _bracket(ib, contract, qty, entry, tp, sl, ref):
    orders = ib.bracketOrder("BUY", qty, entry, tp, sl)
    for o in orders:
        o.orderRef = ref
    return [ib.placeOrder(contract, o) for o in orders]


def _codes(trade):
    return [e.errorCode for e in trade.log if e.errorCode]


def test_bracket_parent_fills_children_work_and_the_target_cancels_the_stop():
    rows = [*flat(2, 6000.0), (6000, 6002, 5999, 6001), (6001, 6010.5, 6000, 6010)]
    with FakeIBKR(es_tape(rows), start=2) as fake, connect(fake) as ib:
        c = _es(ib)
        parent, tp, sl = _bracket(ib, c, 2, 6000.0, 6010.0, 5990.0, "bs-entry-1")
        sync(ib)
        assert [t.orderStatus.status for t in (parent, tp, sl)] == [
            "Submitted",
            "PreSubmitted",
            "PreSubmitted",
        ]
        pid = parent.order.orderId
        assert [o["parent_id"] for o in fake.orders] == [0, pid, pid]
        assert {o["order_ref"] for o in fake.orders} == {"bs-entry-1"}

        advance(fake, ib)  # opens at 6000: the limit entry fills at the open
        assert parent.orderStatus.status == "Filled"
        assert [(f.execution.shares, f.execution.price) for f in parent.fills] == [(2.0, 6000.0)]
        assert parent.fills[0].execution.orderRef == "bs-entry-1"
        assert [tp.orderStatus.status, sl.orderStatus.status] == ["Submitted", "Submitted"]
        [pos] = ib.positions()
        assert (pos.position, pos.avgCost) == (2.0, 300000.0)
        assert fake.position("ES") == (2.0, 300000.0)

        advance(fake, ib)  # 6010.5 high: the take-profit fills at 6010
        assert tp.orderStatus.status == "Filled"
        assert [(f.execution.price, f.commissionReport.realizedPNL) for f in tp.fills] == [
            (6010.0, 1000.0)  # 2 x 10 points x 50
        ]
        assert sl.orderStatus.status == "Cancelled"
        assert _codes(sl) == [202]
        assert ib.positions() == []
        assert fake.bugs == []


def test_stop_fills_first_when_both_exits_are_touched_in_one_bar():
    rows = [*flat(2, 6000.0), (6000, 6000, 6000, 6000), (6000, 6012, 5988, 6000)]
    with FakeIBKR(es_tape(rows), start=2) as fake, connect(fake) as ib:
        parent, tp, sl = _bracket(ib, _es(ib), 1, 6000.0, 6010.0, 5990.0, "bs-2")
        advance(fake, ib, 2)
        assert [t.orderStatus.status for t in (parent, tp, sl)] == [
            "Filled",
            "Cancelled",
            "Filled",
        ]
        assert [f.execution.price for f in sl.fills] == [5990.0]
        assert fake.position("ES") == (0.0, 0.0)


def test_untransmitted_parent_waits_until_the_last_child_transmits():
    rows = flat(6, 6000.0)
    with FakeIBKR(es_tape(rows), start=2) as fake, connect(fake) as ib:
        c = _es(ib)
        parent, tp, sl = ib.bracketOrder("BUY", 1, 6000.0, 6010.0, 5990.0)
        for o in (parent, tp, sl):
            o.orderRef = "bs-3"
        t_parent = ib.placeOrder(c, parent)
        ib.placeOrder(c, tp)
        sync(ib)
        advance(fake, ib)
        assert fake.orders == []  # nothing reached the market yet
        assert t_parent.fills == []
        ib.placeOrder(c, sl)  # transmit=True: the chain goes
        sync(ib)
        assert [o["type"] for o in fake.orders] == ["LMT", "LMT", "STP"]
        advance(fake, ib)
        assert t_parent.orderStatus.status == "Filled"


def test_oca_type_3_exits_shrink_on_each_partial_fill():
    rows = flat(2, 6000.0) + [(6000, 6011, 6000, 6010)] * 3
    with FakeIBKR(es_tape(rows), start=2, positions={"ES": (3, 6000.0)}) as fake:
        fake.partial_fills(qty=1)
        with connect(fake) as ib:
            c = _es(ib)
            tp = LimitOrder("SELL", 3, 6010.0, orderRef="exit-tp", tif="GTC")
            sl = StopOrder("SELL", 3, 5990.0, orderRef="exit-sl", tif="GTC")
            ib.oneCancelsAll([tp, sl], "exits-1", 3)
            t_tp, t_sl = ib.placeOrder(c, tp), ib.placeOrder(c, sl)
            sync(ib)
            assert [o["oca_type"] for o in fake.orders] == [3, 3]
            seen = []
            for _ in range(3):
                advance(fake, ib)
                seen.append(
                    (t_tp.orderStatus.filled, t_sl.order.totalQuantity, fake.position("ES")[0])
                )
            assert seen == [(1.0, 2.0, 2.0), (2.0, 1.0, 1.0), (3.0, 1.0, 0.0)]
            assert t_tp.orderStatus.status == "Filled"
            assert t_sl.orderStatus.status == "Cancelled"
            assert _codes(t_sl) == [202]


def test_oca_type_1_cancels_the_other_on_a_partial_fill_and_the_group_then_refuses_joiners():
    rows = flat(2, 6000.0) + [(6000, 6011, 6000, 6010)] * 2
    with FakeIBKR(es_tape(rows), start=2, positions={"ES": (2, 6000.0)}) as fake:
        fake.partial_fills(qty=1)
        with connect(fake) as ib:
            c = _es(ib)
            tp = LimitOrder("SELL", 2, 6010.0, orderRef="x-tp", tif="GTC")
            sl = StopOrder("SELL", 2, 5990.0, orderRef="x-sl", tif="GTC")
            ib.oneCancelsAll([tp, sl], "exits-2", 1)
            t_tp, t_sl = ib.placeOrder(c, tp), ib.placeOrder(c, sl)
            advance(fake, ib)
            assert (t_tp.orderStatus.filled, t_sl.orderStatus.status) == (1.0, "Cancelled")
            late = StopOrder("SELL", 1, 5980.0, orderRef="x-late", ocaGroup="exits-2", ocaType=1)
            t_late = ib.placeOrder(c, late)
            sync(ib)
            assert t_late.orderStatus.status == "Cancelled"
            assert _codes(t_late) == [201]
            [entry] = [e for e in t_late.log if e.errorCode == 201]
            assert entry.message.endswith("Order rejected - reason:OCA group is already filled")


def test_replacing_an_order_id_modifies_the_order():
    rows = [*flat(2, 6000.0), (6000, 6000, 5994, 5996)]
    with FakeIBKR(es_tape(rows), start=2) as fake, connect(fake) as ib:
        c = _es(ib)
        order = LimitOrder("BUY", 1, 5990.0, orderRef="bs-mod", tif="GTC")
        trade = ib.placeOrder(c, order)
        sync(ib)
        order.lmtPrice, order.totalQuantity = 5995.0, 2
        ib.placeOrder(c, order)
        sync(ib)
        [o] = fake.orders
        assert (o["order_id"], o["lmt_price"], o["qty"]) == (order.orderId, 5995.0, 2.0)
        assert (trade.orderStatus.status, trade.orderStatus.remaining) == ("Submitted", 2.0)
        advance(fake, ib)  # low 5994 touches 5995: fills there
        assert [(f.execution.shares, f.execution.price) for f in trade.fills] == [(2.0, 5995.0)]


def test_a_refusal_rule_rejects_with_201_and_the_trade_is_cancelled():
    with FakeIBKR(es_tape(flat(4, 6000.0)), start=2) as fake, connect(fake) as ib:
        fake.refuse("ES", count=1, message="margin check failed (test rule)")
        trade = ib.placeOrder(_es(ib), MarketOrder("BUY", 1, orderRef="bs-ref"))
        sync(ib)
        assert trade.orderStatus.status == "Cancelled"
        assert _codes(trade) == [201]
        [entry] = [e for e in trade.log if e.errorCode == 201]
        assert entry.message.endswith("Order rejected - reason:margin check failed (test rule)")
        advance(fake, ib)
        assert fake.executions == []
        again = ib.placeOrder(_es(ib), MarketOrder("BUY", 1, orderRef="bs-ref-2"))
        advance(fake, ib)
        assert again.orderStatus.status == "Filled"  # the rule was for one order


def test_a_sell_larger_than_the_long_position_flips_it_short():
    rows = [*flat(2, 6000.0), (6004, 6005, 6003, 6004)]
    fake = FakeIBKR(es_tape(rows), start=2, positions={"ES": (1, 6000.0)})
    with fake, connect(fake) as ib:
        ib.placeOrder(_es(ib), MarketOrder("SELL", 3, orderRef="bs-flip"))
        advance(fake, ib)
        [pos] = ib.positions()
        assert (pos.position, pos.avgCost) == (-2.0, 6004.0 * 50)


def test_global_cancel_cancels_every_open_order():
    with FakeIBKR(es_tape(flat(4, 6000.0)), start=2) as fake, connect(fake) as ib:
        c = _es(ib)
        trades = [
            ib.placeOrder(c, LimitOrder("BUY", 1, 5900.0, orderRef=f"bs-g{k}", tif="GTC"))
            for k in range(2)
        ]
        sync(ib)
        ib.reqGlobalCancel()
        sync(ib)
        assert [t.orderStatus.status for t in trades] == ["Cancelled", "Cancelled"]
        assert [o["status"] for o in fake.orders] == ["Cancelled", "Cancelled"]


def test_an_ioc_limit_that_does_not_fill_on_its_first_bar_is_cancelled():
    rows = [*flat(2, 6000.0), (6000, 6001, 5999, 6000), *flat(2, 5990.0)]
    with FakeIBKR(es_tape(rows), start=2) as fake, connect(fake) as ib:
        trade = ib.placeOrder(_es(ib), LimitOrder("BUY", 1, 5995.0, tif="IOC", orderRef="bs-ioc"))
        advance(fake, ib)
        assert trade.orderStatus.status == "Cancelled"
        assert _codes(trade) == [202]
        advance(fake, ib)  # 5990 later: nothing left to fill
        assert trade.fills == []


def test_a_stop_limit_triggers_and_fills_at_its_stop_within_the_limit():
    rows = [*flat(2, 6000.0), (6000, 6006, 5999, 6005)]
    with FakeIBKR(es_tape(rows), start=2) as fake, connect(fake) as ib:
        order = StopLimitOrder("BUY", 1, 6006.0, 6004.0, orderRef="bs-stl")  # limit, stop
        trade = ib.placeOrder(_es(ib), order)
        advance(fake, ib)
        assert [f.execution.price for f in trade.fills] == [6004.0]
        assert fake.orders[0]["type"] == "STP LMT"


def test_commissions_and_account_values_after_a_round_trip():
    rows = [*flat(2, 6000.0), (6000, 6001, 5999, 6000), (6000, 6011, 6000, 6010)]
    with FakeIBKR(es_tape(rows), start=2, commission=2.25) as fake, connect(fake) as ib:
        _parent, tp, _sl = _bracket(ib, _es(ib), 2, 6000.0, 6010.0, 5990.0, "bs-fee")
        advance(fake, ib, 2)
        [fill] = tp.fills
        assert (fill.commissionReport.commission, fill.commissionReport.realizedPNL) == (
            4.5,
            995.5,  # 2 x 10 x 50, less this fill's commission
        )
        values = {v.tag: v.value for v in ib.accountValues() if v.modelCode == ""}
        assert values["NetLiquidation"] == "1000991.00"  # 1000 profit, 9 commission
        assert values["RealizedPnL"] == "995.50"  # the closing fill's, as its report says
        assert values["GrossPositionValue"] == "0.00"


def test_a_child_of_an_unknown_or_cancelled_parent_is_refused():
    with FakeIBKR(es_tape(flat(4, 6000.0)), start=2) as fake, connect(fake) as ib:
        c = _es(ib)
        orphan = ib.placeOrder(c, StopOrder("SELL", 1, 5990.0, parentId=999, orderRef="bs-o"))
        parent = ib.placeOrder(c, LimitOrder("BUY", 1, 5900.0, orderRef="bs-p", tif="GTC"))
        sync(ib)
        ib.cancelOrder(parent.order)
        sync(ib)
        late = StopOrder("SELL", 1, 5890.0, parentId=parent.order.orderId, orderRef="bs-late")
        late_child = ib.placeOrder(c, late)
        sync(ib)
        reasons = [
            [e.message.split("reason:")[1] for e in t.log if e.errorCode == 201]
            for t in (orphan, late_child)
        ]
        assert reasons == [
            ["parent order 999 not found"],
            [f"parent order {parent.order.orderId} is Cancelled"],
        ]
        assert [o["status"] for o in fake.orders] == ["Cancelled"] * 3


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ({"algoStrategy": "Adaptive"}, "algo orders"),
        ({"hedgeType": "D", "hedgeParam": "0.5"}, "hedge orders"),
        (
            {"orderType": "TRAIL", "auxPrice": 5.0},
            "order type 'TRAIL' (the fake serves MKT, LMT, STP, STP LMT)",
        ),
        ({"tif": "FOK"}, "time in force 'FOK' (the fake serves DAY, GTC, IOC)"),
        ({"allOrNone": True}, "all-or-none orders"),
        ({"displaySize": 1}, "iceberg orders (displaySize)"),
        ({"minQty": 1}, "minQty"),
        ({"goodAfterTime": "20251201 15:00:00 UTC"}, "goodAfterTime"),
        ({"conditions": [PriceCondition(price=6000.0, conId=1, exch="CME")]}, "conditional orders"),
    ],
)
def test_order_features_the_fake_does_not_model_are_refused_by_name(change, what):
    with FakeIBKR(es_tape(flat(4, 6000.0)), start=2) as fake, connect(fake) as ib:
        order = MarketOrder("BUY", 1, orderRef="bs-x")
        for key, value in change.items():
            setattr(order, key, value)
        trade = ib.placeOrder(_es(ib), order)
        sync(ib)
        [entry] = [e for e in trade.log if e.errorCode == 201]
        assert entry.message.endswith(f"the fake gateway does not serve {what}")
        assert fake.orders == []


def test_a_what_if_order_is_refused_and_places_nothing():
    with FakeIBKR(es_tape(flat(4, 6000.0)), start=2) as fake, connect(fake) as ib:
        seen = []
        ib.errorEvent += lambda req_id, code, text, contract: seen.append((code, text))
        state = ib.whatIfOrder(_es(ib), MarketOrder("BUY", 1))
        assert state == []  # ib_async ends the request on the error
        assert seen == [
            (201, "Order rejected - reason:the fake gateway does not serve what-if orders")
        ]
        assert fake.orders == [] and fake.executions == []
