"""AlpacaBroker against the loopback fake Alpaca, through the real alpaca-py clients: orders
by client id (bracket, OTO, OCO, plain), amend (REPLACED under the base id, also after a
restart), cancel, idempotent submits (duplicate id, 504 after accept), refusals, positions,
account, bars and last price."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from alpaca_kit import Events, bracket, broker, cid, entry, stop_leg, target_leg
from fake_alpaca_kit import flat, tape

from backstop.domain.commands import AmendOrder, CancelOrder, SubmitOrder
from backstop.domain.enums import OrderStatus, OrderType, Side
from backstop.domain.events import (
    Account,
    BrokerPosition,
    Execution,
    OrderUpdate,
    OrderUpdateKind,
)
from backstop.engine.broker import BrokerPort, BrokerUnavailable
from backstop.errors import BackstopError
from backstop.testing.fake_alpaca import FakeAlpaca

T0 = 1704205800 * 10**9  # the tape's first bar, 2024-01-02 14:30 UTC
MIN = 60 * 10**9


def _orders_with(fake: FakeAlpaca, client_id: str) -> list[dict]:
    return [o for o in fake.orders() if o["client_order_id"] == client_id]


def test_the_adapter_is_a_broker_port() -> None:
    with FakeAlpaca(tape(AAPL=flat(3))) as fake:
        assert isinstance(broker(fake, stream=False), BrokerPort)


def test_a_bracket_fills_its_entry_then_its_target_and_alpaca_cancels_the_stop() -> None:
    rows = [*flat(2), (101.0, 111.0, 100.5, 108.0), *flat(2, 108.0)]
    with FakeAlpaca(tape(AAPL=rows)) as fake, broker(fake) as b:
        assert b.wait_connected()
        ev = Events(b)
        b.submit(bracket(1, stop=95.0, target=110.0))
        ev.drain()
        accepted = [("ACCEPTED", cid(1, c, n)) for c, n in (("E", 0), ("TP", 2), ("SL", 1))]
        assert ev.updates() == accepted  # the held legs are Alpaca's once the bracket is
        assert [("ACCEPTED", o.client_order_id) for o in b.open_orders()] == accepted
        fake.advance()
        ev.until(ev.has_fill(cid(1, "E", 0)))
        (fill,) = ev.fills()
        assert (fill.side, fill.qty, fill.price, fill.leaves_qty, fill.ts_event) == (
            Side.BUY,
            10.0,
            100.0,
            0.0,
            T0 + MIN,
        )
        legs = b.open_orders()
        assert [(o.client_order_id, o.parent_id, o.status) for o in legs] == [
            (cid(1, "TP", 2), cid(1, "E", 0), OrderStatus.ACCEPTED),
            (cid(1, "SL", 1), cid(1, "E", 0), OrderStatus.ACCEPTED),
        ]
        assert b.positions() == [BrokerPosition("AAPL", 10.0, 100.0)]
        assert b.account() == Account(equity=100_000.0, cash=99_000.0, buying_power=199_000.0)
        fake.advance()
        ev.until(lambda evs: ("CANCELED", cid(1, "SL", 1)) in ev.updates())
        target = ev.fills()[-1]
        assert (target.client_order_id, target.side, target.price, target.ts_event) == (
            cid(1, "TP", 2),
            Side.SELL,
            110.0,
            T0 + 2 * MIN,
        )
        assert ev.updates()[3:] == [("CANCELED", cid(1, "SL", 1))]
        assert b.positions() == [] and b.open_orders() == []
        assert b.account() == Account(equity=100_100.0, cash=100_100.0, buying_power=200_200.0)
        assert len({f.exec_id for f in ev.fills()}) == 2 == len(ev.fills())


def test_an_oto_and_an_oco_pair_report_under_backstops_ids() -> None:
    rows = [*flat(2), *flat(1, 100.0), (99.0, 99.5, 94.0, 96.0), *flat(2, 96.0)]
    with FakeAlpaca(tape(AAPL=rows, MSFT=flat(6, 300.0))) as fake, broker(fake) as b:
        assert b.wait_connected()
        ev = Events(b)
        oto = entry(1, "MSFT", 5, legs=(stop_leg(1, 290.0, "MSFT", 5, parent_id=cid(1, "E", 0)),))
        b.submit(oto)
        b.submit(entry(2))  # a plain market entry; its exits follow as an OCO pair
        fake.advance()
        ev.until(lambda evs: len(ev.fills()) == 2)
        sl = stop_leg(2, 95.0, oco_group="g2")
        b.submit(replace(sl, siblings=(target_leg(2, 120.0, oco_group="g2"),)))
        ev.drain()
        assert ev.updates()[-2:] == [("ACCEPTED", cid(2, "TP", 2)), ("ACCEPTED", cid(2, "SL", 1))]
        working = {(o.client_order_id, o.parent_id) for o in b.open_orders()}
        assert working == {
            (cid(1, "SL", 1), cid(1, "E", 0)),
            (cid(2, "TP", 2), None),
            (cid(2, "SL", 1), cid(2, "TP", 2)),  # Alpaca's OCO: the stop is the target's leg
        }
        fake.advance(2)  # the stop at 95 is touched: it fills at min(open 99, 95)
        ev.until(lambda evs: ("CANCELED", cid(2, "TP", 2)) in ev.updates())
        stop = ev.fills()[-1]
        assert (stop.client_order_id, stop.price, stop.qty) == (cid(2, "SL", 1), 95.0, 10.0)
        assert b.positions() == [BrokerPosition("MSFT", 5.0, 300.0)]


def test_an_amended_stop_is_replaced_under_its_base_id_also_after_a_restart() -> None:
    rows = [*flat(2), *flat(1, 100.0), (99.0, 99.5, 97.5, 98.0), *flat(2, 98.0)]
    with FakeAlpaca(tape(AAPL=rows)) as fake, broker(fake) as b:
        assert b.wait_connected()
        ev = Events(b)
        b.submit(bracket(1, stop=95.0, target=120.0))
        fake.advance()
        ev.until(ev.has_fill(cid(1, "E", 0)))
        b.amend(AmendOrder(cid(1, "SL", 1), stop_price=97.0))
        replaced = ev.drain()[-1]
        assert isinstance(replaced, OrderUpdate)
        (first,) = _orders_with(fake, cid(1, "SL", 1) + ".1")
        assert replaced == OrderUpdate(
            OrderUpdateKind.REPLACED, cid(1, "SL", 1), T0 + MIN, 0,
            broker_order_id=first["id"], qty=10.0, stop_price=97.0,
        )  # fmt: skip
        # a fresh adapter (a restart) finds the replacement from Alpaca's ids alone
        again = broker(fake, stream=False)
        seen = again.order(cid(1, "SL", 1))
        assert seen is not None
        assert (seen.client_order_id, seen.broker_order_id, seen.stop_price, seen.parent_id) == (
            cid(1, "SL", 1),
            first["id"],
            97.0,
            cid(1, "E", 0),
        )
        again.amend(AmendOrder(cid(1, "SL", 1), stop_price=98.0))
        (second,) = _orders_with(fake, cid(1, "SL", 1) + ".2")
        assert again.drain_events() == [
            OrderUpdate(
                OrderUpdateKind.REPLACED, cid(1, "SL", 1), T0 + MIN, 0,
                broker_order_id=second["id"], qty=10.0, stop_price=98.0,
            )
        ]  # fmt: skip
        fake.advance(2)
        ev.until(ev.has_fill(cid(1, "SL", 1)))
        stop = ev.fills()[-1]
        assert (stop.price, stop.broker_order_id) == (98.0, second["id"])
        ev.until(lambda evs: ("CANCELED", cid(1, "TP", 2)) in ev.updates())
        statuses = {o["client_order_id"]: o["status"] for o in fake.orders()}
        assert statuses[cid(1, "SL", 1) + ".1"] == "replaced"
        assert all(e.client_order_id.count(".") == 0 for e in ev.all)  # base ids only


def test_cancel_reports_once_and_an_ended_order_is_no_error() -> None:
    with FakeAlpaca(tape(AAPL=flat(4))) as fake, broker(fake, stream=False) as b:
        b.submit(entry(1, order_type=OrderType.LIMIT, limit_price=90.0))
        b.cancel(CancelOrder(cid(1, "E", 0)))
        assert [(e.kind.name, e.client_order_id) for e in b.drain_events()] == [  # type: ignore[union-attr]
            ("ACCEPTED", cid(1, "E", 0)),
            ("CANCELED", cid(1, "E", 0)),
        ]
        b.cancel(CancelOrder(cid(1, "E", 0)))
        assert b.drain_events() == []
        order = b.order(cid(1, "E", 0))
        assert order is not None and order.status == OrderStatus.CANCELED
        b.submit(entry(2))
        fake.advance()
        b.cancel(CancelOrder(cid(2, "E", 0)))  # filled meanwhile: nothing to cancel...
        accepted, fill = b.drain_events()  # ...but the fill nobody reported yet is read first
        assert (accepted.kind, accepted.client_order_id) == (  # type: ignore[union-attr]
            OrderUpdateKind.ACCEPTED,
            cid(2, "E", 0),
        )
        assert isinstance(fill, Execution)
        assert (fill.client_order_id, fill.qty, fill.price) == (cid(2, "E", 0), 10.0, 100.0)
        b.cancel(CancelOrder(cid(2, "E", 0)))
        b.amend(AmendOrder(cid(2, "E", 0), qty=5))  # ended: nothing to replace either
        assert b.drain_events() == []
        assert [o["client_order_id"] for o in fake.orders()] == [cid(1, "E", 0), cid(2, "E", 0)]
        with pytest.raises(BackstopError, match="cancel bs-t1-9-E-0: Alpaca has no such order"):
            b.cancel(CancelOrder(cid(9, "E", 0)))


def test_a_duplicate_client_id_is_adopted_never_placed_twice() -> None:
    with FakeAlpaca(tape(AAPL=flat(4))) as fake:
        b = broker(fake, stream=False)
        cmd = bracket(1, stop=95.0, target=110.0)
        b.submit(cmd)
        b.submit(cmd)  # a resend (e.g. the core re-sending after a crash)
        assert len(_orders_with(fake, cid(1, "E", 0))) == 1 and len(fake.orders()) == 3
        events = b.drain_events()
        assert [e.client_order_id for e in events] == [
            cid(1, "E", 0),
            cid(1, "TP", 2),
            cid(1, "SL", 1),
        ]
        restarted = broker(fake, stream=False)
        restarted.submit(cmd)
        assert len(fake.orders()) == 3
        assert [e.kind for e in restarted.drain_events()] == [OrderUpdateKind.ACCEPTED] * 3  # type: ignore[union-attr]
        posts = [status for method, path, status in fake.requests if method == "POST"]
        assert posts == [200, 422, 422]
        other = SubmitOrder(cid(1, "E", 0), "MSFT", Side.BUY, 1)
        with pytest.raises(BackstopError, match="is a BUY of AAPL, not this BUY of MSFT"):
            restarted.submit(other)


def test_a_resend_after_a_restart_adopts_the_order_and_books_what_filled_meanwhile() -> None:
    rows = [*flat(2), (101.0, 111.0, 100.5, 108.0), *flat(2, 108.0)]
    with FakeAlpaca(tape(AAPL=rows)) as fake:
        first = broker(fake, stream=False)
        cmd = bracket(1, stop=95.0, target=110.0)
        first.submit(cmd)
        fake.advance(2)  # the entry fills, then its target; the process is gone by now
        restarted = broker(fake, stream=False)
        restarted.submit(cmd)  # the core re-sends the unconfirmed intent after its restart
        assert len(fake.orders()) == 3
        events = restarted.drain_events()
        fills = [(e.client_order_id, e.qty, e.price) for e in events if isinstance(e, Execution)]
        assert fills == [(cid(1, "E", 0), 10.0, 100.0), (cid(1, "TP", 2), 10.0, 110.0)]
        ends = [(e.kind.name, e.client_order_id) for e in events if isinstance(e, OrderUpdate)]
        assert ends[-1] == ("CANCELED", cid(1, "SL", 1))
        assert restarted.recent_fills(T0) == [e for e in events if isinstance(e, Execution)]


def test_a_504_after_accept_gives_exactly_one_order() -> None:
    with FakeAlpaca(tape(AAPL=flat(4))) as fake:
        b = broker(fake, stream=False)
        fake.timeout_after_accept(1)
        b.submit(bracket(1, stop=95.0, target=110.0))
        posts = [status for method, path, status in fake.requests if method == "POST"]
        assert posts == [504, 422]  # alpaca-py's own retry meets the duplicate id
        assert len(_orders_with(fake, cid(1, "E", 0))) == 1 and len(fake.orders()) == 3
        assert [e.client_order_id for e in b.drain_events()] == [
            cid(1, "E", 0),
            cid(1, "TP", 2),
            cid(1, "SL", 1),
        ]
        fake.fail_next(2, status=429)  # rate limited twice: alpaca-py's third try goes through
        b.submit(entry(3))
        assert len(_orders_with(fake, cid(3, "E", 0))) == 1
        posts = [status for method, path, status in fake.requests if method == "POST"]
        assert posts[2:] == [429, 429, 200]
        assert [e.client_order_id for e in b.drain_events()] == [cid(3, "E", 0)]
        fake.fail_next(4, status=429)  # still rate limited after alpaca-py's retries
        with pytest.raises(BrokerUnavailable, match="submit bs-t1-4-E-0: Alpaca answered 429"):
            b.submit(entry(4))
        assert _orders_with(fake, cid(4, "E", 0)) == [] and b.drain_events() == []
        fake.fail_next(4, status=504)  # every try of alpaca-py refused before the market
        with pytest.raises(BrokerUnavailable, match=r"Alpaca holds no order bs-t1-2-E-0: nothing"):
            b.submit(entry(2))
        assert _orders_with(fake, cid(2, "E", 0)) == []


def test_refused_orders_are_rejected_events_with_alpacas_words() -> None:
    with FakeAlpaca(tape(AAPL=flat(5))) as fake, broker(fake) as b:
        assert b.wait_connected()
        ev = Events(b)
        fake.refuse("AAPL", how="403")
        b.submit(entry(1))
        b.submit(entry(2))
        fake.advance()
        ev.until(ev.has_fill(cid(2, "E", 0)))
        rejected = [e for e in ev.all if isinstance(e, OrderUpdate) and e.kind.name == "REJECTED"]
        assert rejected == [
            OrderUpdate(
                OrderUpdateKind.REJECTED, cid(1, "E", 0), 0, 0,
                message="order for AAPL refused (fake refuse rule)",
            )
        ]  # fmt: skip
        cross = SubmitOrder(cid(2, "X", 1), "AAPL", Side.SELL, 15, reduce_only=True)
        b.submit(cross)  # would take the long 10 through zero: Alpaca answers 403 40310000
        assert ev.drain() == [
            OrderUpdate(
                OrderUpdateKind.REJECTED, cid(2, "X", 1), 0, 0,
                message="insufficient qty available for order (requested: 15, available: 10)",
            )
        ]  # fmt: skip
        fake.refuse("AAPL", how="rejected")  # accepted, then rejected on the stream
        b.submit(entry(3))
        ev.until(lambda evs: ("REJECTED", cid(3, "E", 0)) in ev.updates())
        time.sleep(0.1)
        ev.drain()
        third = [kind for kind, c in ev.updates() if c == cid(3, "E", 0)]
        # the submit's answer already says rejected; the stream's "new" may come first or not
        assert third in (["REJECTED"], ["ACCEPTED", "REJECTED"])


def test_bars_and_the_last_price_come_from_the_data_client() -> None:
    rows = [(100.0, 101.0, 99.0, 100.5), (100.5, 102.0, 100.0, 101.25), *flat(2, 101.0)]
    with FakeAlpaca(tape(AAPL=rows)) as fake:
        b = broker(fake, stream=False)
        fake.advance()
        frame = b.bars(["AAPL"], "1Min", T0)
        assert frame["ts"].to_list() == [T0, T0 + MIN]  # up to the fake's now, no look-ahead
        assert frame["close"].to_list() == [100.5, 101.25]
        assert b.last_price("AAPL") == 101.25
