"""Fault switches of the fake IBKR gateway, seen through the real ib_async client: outages,
connectivity errors, gateway restarts that reissue order ids, external and delayed fills."""

from __future__ import annotations

import pytest
from fake_ibkr_kit import advance, connect, es_tape, flat, sync, wait_disconnected
from ib_async import IB, ExecutionFilter, LimitOrder, MarketOrder
from ib_async import Future as IbFuture

from backstop.runners.live.feeds import fake_advance
from backstop.testing.fake_ibkr import FakeIBKR


def _es(ib):
    [contract] = ib.qualifyContracts(IbFuture("ES", "202512", "CME"))
    return contract


def _fills(ib):
    return sorted(
        (f.execution.orderId, f.execution.orderRef, f.execution.shares, f.execution.price)
        for f in ib.reqExecutions()
    )


def test_fills_during_an_outage_are_lost_live_but_resync_shows_them():
    rows = [*flat(2, 6000.0), (6003, 6004, 6002, 6003), *flat(2, 6003.0)]
    with FakeIBKR(es_tape(rows), start=2) as fake:
        with connect(fake) as ib:
            trade = ib.placeOrder(_es(ib), MarketOrder("BUY", 2, orderRef="bs-out-1"))
            sync(ib)
            fake.disconnect(outage=True)
            wait_disconnected(ib)
            assert fake.advance()  # the entry fills while nobody is connected
            assert trade.fills == []
            refused = IB()
            with pytest.raises(ConnectionRefusedError):
                refused.connect(fake.host, fake.port, clientId=1, timeout=2)
            refused.disconnect()
        fake.end_outage()
        with connect(fake) as ib:
            assert _fills(ib) == [(trade.order.orderId, "bs-out-1", 2.0, 6003.0)]
            [pos] = ib.positions()
            assert (pos.position, pos.avgCost) == (2.0, 6003.0 * 50)
            [done] = ib.reqCompletedOrders(apiOnly=False)
            assert (done.order.orderRef, done.orderStatus.status) == ("bs-out-1", "Filled")
        assert fake.bugs == []


def test_connectivity_1100_loses_fill_reports_until_1102():
    rows = [*flat(2, 6000.0), *flat(3, 6001.0)]
    with FakeIBKR(es_tape(rows), start=2) as fake, connect(fake) as ib:
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, text, contract: codes.append(code)
        trade = ib.placeOrder(_es(ib), MarketOrder("BUY", 1, orderRef="bs-1100"))
        sync(ib)
        fake.connectivity_lost()
        advance(fake, ib)
        assert trade.fills == [] and trade.orderStatus.status == "Submitted"
        fake.connectivity_restored()
        sync(ib)
        assert codes == [1100, 1102]
        assert _fills(ib) == [(trade.order.orderId, "bs-1100", 1.0, 6001.0)]
        assert [p.position for p in ib.positions()] == [1.0]


def test_a_restart_reissues_order_ids_and_order_ref_tells_the_orders_apart():
    rows = flat(8, 6000.0)
    with FakeIBKR(es_tape(rows), start=2) as fake:
        with connect(fake) as ib:
            first = ib.placeOrder(_es(ib), MarketOrder("BUY", 1, orderRef="bs-before"))
            advance(fake, ib)
            assert first.orderStatus.status == "Filled"
        port = fake.port
        fake.restart(reissue_from=1)
        assert fake.port == port
        with connect(fake) as ib:
            second = ib.placeOrder(_es(ib), MarketOrder("SELL", 1, orderRef="bs-after"))
            advance(fake, ib)
            # the new session was handed the same id again: only orderRef says which is which
            assert second.order.orderId == first.order.orderId
            oid = first.order.orderId
            assert _fills(ib) == [(oid, "bs-after", 1.0, 6000.0), (oid, "bs-before", 1.0, 6000.0)]
        assert [(o["order_id"], o["epoch"], o["order_ref"]) for o in fake.orders] == [
            (oid, 1, "bs-before"),
            (oid, 2, "bs-after"),
        ]
        assert fake.position("ES") == (0.0, 0.0)


def test_an_open_order_survives_a_restart_and_is_modified_and_cancelled_by_its_id():
    with FakeIBKR(es_tape(flat(6, 6000.0)), start=2) as fake:
        with connect(fake) as ib:
            resting = LimitOrder("BUY", 1, 5900.0, orderRef="bs-resting", tif="GTC")
            ib.placeOrder(_es(ib), resting)
            sync(ib)
        fake.restart()
        with connect(fake) as ib:
            [trade] = ib.openTrades()
            assert (trade.order.orderRef, trade.order.orderId) == ("bs-resting", resting.orderId)
            trade.order.lmtPrice = 5950.0  # re-placing its id still modifies it
            ib.placeOrder(trade.contract, trade.order)
            sync(ib)
            assert [(o["order_id"], o["lmt_price"]) for o in fake.orders] == [
                (resting.orderId, 5950.0)
            ]
            ib.cancelOrder(trade.order)
            sync(ib)
            assert trade.orderStatus.status == "Cancelled"
        assert [o["status"] for o in fake.orders] == ["Cancelled"]


def test_a_bracket_cut_off_before_its_last_child_never_reaches_the_market():
    with FakeIBKR(es_tape(flat(6, 6000.0)), start=2) as fake:
        with connect(fake) as ib:
            parent, tp, _sl = ib.bracketOrder("BUY", 1, 6000.0, 6010.0, 5990.0)
            ib.placeOrder(_es(ib), parent)
            ib.placeOrder(_es(ib), tp)
            sync(ib)
        advance_ok = fake.advance()
        assert advance_ok and fake.orders == [] and fake.executions == []
        with connect(fake) as ib:
            assert ib.openTrades() == [] and ib.positions() == []


def test_an_external_position_shows_in_positions_and_executions():
    with FakeIBKR(es_tape(flat(4, 6000.0)), start=2) as fake, connect(fake) as ib:
        fake.open_external_position("ES", -1, 6001.0)
        sync(ib)
        [pos] = ib.positions()
        assert (pos.position, pos.avgCost) == (-1.0, 300050.0)
        assert _fills(ib) == [(0, "", 1.0, 6001.0)]


def test_a_starting_position_is_there_on_connect():
    fake = FakeIBKR(es_tape(flat(4, 6000.0)), start=2, positions={"ES": (-1, 6000.0)})
    with fake, connect(fake) as ib:
        [pos] = ib.positions()
        assert (pos.contract.localSymbol, pos.position, pos.avgCost) == ("ESZ5", -1.0, 300000.0)
        [item] = ib.portfolio()
        assert (item.position, item.averageCost, item.marketPrice) == (-1.0, 300000.0, 6000.0)
        assert _fills(ib) == []


def test_delayed_fills_come_the_given_number_of_bars_late():
    rows = [*flat(2, 6000.0), (6001, 6001, 6001, 6001), (6002, 6002, 6002, 6002), *flat(2, 6003.0)]
    with FakeIBKR(es_tape(rows), start=2) as fake, connect(fake) as ib:
        fake.delay_fills(2)
        trade = ib.placeOrder(_es(ib), MarketOrder("BUY", 1, orderRef="bs-late"))
        advance(fake, ib, 2)
        assert trade.fills == []
        advance(fake, ib)
        assert [f.execution.price for f in trade.fills] == [6003.0]


def test_the_http_control_endpoint_moves_the_clock():
    with FakeIBKR(es_tape(flat(3, 6000.0)), start=1) as fake:
        step = fake_advance(fake.control_url, ("unused", "unused"))
        before = fake.now
        assert step() is True
        assert fake.now == before + 60_000_000_000
        assert step() is True
        assert step() is False  # the tape ran out


def test_the_execution_filter_selects_by_side_and_time():
    rows = [*flat(2, 6000.0), *flat(2, 6001.0), *flat(2, 6002.0)]
    with FakeIBKR(es_tape(rows), start=2) as fake, connect(fake) as ib:
        c = _es(ib)
        ib.placeOrder(c, MarketOrder("BUY", 2, orderRef="bs-f1"))
        advance(fake, ib)  # fills at 6001, 14:32
        ib.placeOrder(c, MarketOrder("SELL", 1, orderRef="bs-f2"))
        advance(fake, ib, 2)  # fills at 6001 at 14:33
        refs = [f.execution.orderRef for f in ib.reqExecutions(ExecutionFilter(side="SELL"))]
        assert refs == ["bs-f2"]
        since = ExecutionFilter(time="20251201 14:33:00 UTC")
        assert [f.execution.orderRef for f in ib.reqExecutions(since)] == ["bs-f2"]
        assert len(ib.reqExecutions(ExecutionFilter(clientId=1))) == 2
        assert ib.reqExecutions(ExecutionFilter(clientId=2)) == []
        seen = []
        ib.errorEvent += lambda req_id, code, text, contract: seen.append(code)
        assert ib.reqExecutions(ExecutionFilter(time="yesterday")) == []
        assert seen == [322]
