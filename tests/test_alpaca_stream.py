"""The trade-updates stream behind AlpacaBroker and the faults around it: events lost in an
outage come back from the REST re-sync after the reconnect, each fill once, with the execution
id REST and the stream share (a fresh adapter's ``recent_fills`` reports the same ids); partial
fills; a broker restart; a silent socket caught up by ``resync()``; a fill never reported after
its order's cancel; stopping is bounded."""

from __future__ import annotations

import time

import pytest
import requests
from alpaca_kit import Events, bracket, broker, cid, entry
from fake_alpaca_kit import flat, tape

from backstop.domain.commands import CancelOrder
from backstop.domain.enums import OrderType, Side
from backstop.domain.events import Execution, OrderUpdate
from backstop.engine.broker import BrokerUnavailable
from backstop.testing.fake_alpaca import FakeAlpaca

T0 = 1704205800 * 10**9
MIN = 60 * 10**9


def test_two_leg_fills_inside_an_outage_come_back_once_each_after_the_reconnect() -> None:
    aapl = [*flat(2), (101.0, 111.0, 100.5, 108.0), *flat(3, 108.0)]  # the target fills
    msft = [*flat(2, 300.0), (299.0, 299.5, 289.0, 291.0), *flat(3, 291.0)]  # the stop fills
    with FakeAlpaca(tape(AAPL=aapl, MSFT=msft)) as fake, broker(fake) as b:
        assert b.wait_connected()
        ev = Events(b)
        b.submit(bracket(1, stop=95.0, target=110.0))
        b.submit(bracket(2, stop=290.0, target=320.0, symbol="MSFT", qty=5))
        fake.advance()
        ev.until(lambda evs: len(ev.fills()) == 2)
        fake.stream_outage()  # sockets dropped, reconnects refused, events lost
        fake.advance()
        lost = sorted(e.event for e in fake.lost_events)
        assert lost == ["canceled", "canceled", "fill", "fill"]
        assert b.drain_events() == []  # nothing heard while the stream is down
        fake.end_outage()
        assert b.wait_connected(2, timeout_s=10.0)
        ev.until(lambda evs: len(ev.fills()) == 4)
        ev.until(lambda evs: len(ev.updates()) == 8)  # 6 ACCEPTED + 2 CANCELED
        legs = [(f.client_order_id, f.side, f.qty, f.price, f.ts_event) for f in ev.fills()[2:]]
        assert sorted(legs) == [
            (cid(1, "TP", 2), Side.SELL, 10.0, 110.0, T0 + 2 * MIN),
            (cid(2, "SL", 1), Side.SELL, 5.0, 290.0, T0 + 2 * MIN),
        ]
        assert sorted(ev.updates()[6:]) == [
            ("CANCELED", cid(1, "SL", 1)),
            ("CANCELED", cid(2, "TP", 2)),
        ]
        fills_at_fake = [(a["order_id"], a["id"].rpartition("::")[2]) for a in _activities(fake)]
        assert sorted((f.broker_order_id, f.exec_id) for f in ev.fills()) == sorted(fills_at_fake)
        # a second reconnect re-reads the same orders and fills: nothing is reported again
        fake.drop_stream()
        assert b.wait_connected(3, timeout_s=10.0)
        time.sleep(0.1)
        assert ev.drain() == []
        # booked once by execution id, the fills give the broker's flat book and P&L
        booked = {f.exec_id: f for f in ev.fills()}
        assert len(booked) == 4
        assert b.positions() == []
        pnl = sum(f.qty * f.price * (-1 if f.side == Side.BUY else 1) for f in booked.values())
        assert pnl == 10 * (110.0 - 100.0) + 5 * (290.0 - 300.0)
        assert b.account().cash == 100_000.0 + pnl
        # a fresh adapter (a restart) reads the same fills under the same ids
        again = broker(fake, stream=False).recent_fills(T0)
        assert sorted(_ids(again)) == sorted(_ids(ev.fills()))
        assert [f.ts_event for f in again] == [T0 + MIN] * 2 + [T0 + 2 * MIN] * 2  # oldest first
        assert again == sorted(again, key=lambda f: f.ts_event)


def _ids(fills: list[Execution]) -> list[tuple[str, str, float, float]]:
    return [(f.client_order_id, f.exec_id, f.qty, f.price) for f in fills]


def _activities(fake: FakeAlpaca) -> list[dict]:
    """The fake's fill activities, read over plain HTTP (alpaca-py has no method for them)."""
    headers = {"APCA-API-KEY-ID": fake.key_id, "APCA-API-SECRET-KEY": fake.secret_key}
    url = f"{fake.url}/v2/account/activities/FILL?direction=asc"
    return requests.get(url, headers=headers, timeout=5).json()


def test_the_stream_stops_within_its_bound() -> None:
    with FakeAlpaca(tape(AAPL=flat(3))) as fake:
        b = broker(fake).start()
        assert b.wait_connected()
        started = time.monotonic()
        b.close()
        assert time.monotonic() - started < 2.0  # not alpaca-py's 5-second poll
        assert b._stream is not None and b._stream._thread is None


def test_partial_fills_are_executions_with_what_is_left() -> None:
    with FakeAlpaca(tape(AAPL=flat(6))) as fake, broker(fake) as b:
        assert b.wait_connected()
        ev = Events(b)
        fake.partial_fills(qty=4)
        b.submit(entry(1))
        fake.advance(3)
        ev.until(lambda evs: len(ev.fills()) == 3)
        assert [(f.qty, f.leaves_qty, f.ts_event) for f in ev.fills()] == [
            (4.0, 6.0, T0 + MIN),
            (4.0, 2.0, T0 + 2 * MIN),
            (2.0, 0.0, T0 + 3 * MIN),
        ]
        assert ev.updates() == [("ACCEPTED", cid(1, "E", 0))]


def test_a_broker_restart_is_unavailable_then_resynced_after_the_reconnect() -> None:
    with FakeAlpaca(tape(AAPL=flat(6))) as fake, broker(fake) as b:
        assert b.wait_connected()
        ev = Events(b)
        b.submit(entry(1, order_type=OrderType.LIMIT, limit_price=100.0))
        ev.drain()
        fake.go_down()
        with pytest.raises(BrokerUnavailable, match="submit bs-t1-2-E-0: Alpaca cannot be reached"):
            b.submit(entry(2))
        fake.advance()  # the limit fills while nobody can hear it
        fake.come_up()
        assert b.wait_connected(2, timeout_s=10.0)
        ev.until(ev.has_fill(cid(1, "E", 0)))
        assert [(f.client_order_id, f.price) for f in ev.fills()] == [(cid(1, "E", 0), 100.0)]
        assert _orders_at(fake, cid(2, "E", 0)) == 0  # never placed: the core may send it again
        b.submit(entry(2))
        assert _orders_at(fake, cid(2, "E", 0)) == 1


def test_a_silent_socket_is_caught_up_by_an_explicit_resync() -> None:
    with FakeAlpaca(tape(AAPL=flat(6))) as fake, broker(fake) as b:
        assert b.wait_connected()
        ev = Events(b)
        b.submit(entry(1))
        ev.drain()
        fake.stream_outage(mode="silent")  # connections accepted but served nothing
        assert b.wait_connected(2, timeout_s=10.0)
        assert ev.drain() == []  # the reconnect's re-sync: nothing happened meanwhile
        fake.advance()
        time.sleep(0.1)
        assert ev.drain() == []  # the stream looks healthy and says nothing
        caught = b.resync()  # what a runner's periodic reconcile calls
        assert [(type(e).__name__, e.client_order_id) for e in caught] == [
            ("Execution", cid(1, "E", 0))
        ]
        assert b.resync() == []


def _orders_at(fake: FakeAlpaca, client_id: str) -> int:
    return sum(o["client_order_id"] == client_id for o in fake.orders())


def test_a_fill_is_never_reported_after_its_orders_cancel() -> None:
    with FakeAlpaca(tape(AAPL=flat(6))) as fake, broker(fake) as b:
        assert b.wait_connected()
        ev = Events(b)
        fake.partial_fills(qty=4)
        b.submit(entry(1))
        fake.advance()  # 4 of 10 fill; the stream's message may or may not be here yet
        b.cancel(CancelOrder(cid(1, "E", 0)))
        deadline = time.monotonic() + 10  # bounded; a loaded machine delivers late
        while time.monotonic() < deadline:
            ev.drain()
            if any(isinstance(e, OrderUpdate) and e.kind.name == "CANCELED" for e in ev.all):
                break
            time.sleep(0.05)
        time.sleep(0.3)
        ev.drain()  # the stream's late copy of the fill, if any, is not reported again
        kinds = [e.kind.name if isinstance(e, OrderUpdate) else "FILL" for e in ev.all]
        assert kinds == ["ACCEPTED", "FILL", "CANCELED"]
        (fill,) = ev.fills()
        assert (fill.qty, fill.leaves_qty) == (4.0, 6.0)


def test_an_end_heard_before_its_fill_is_reported_after_the_fill() -> None:
    """The stream lost a partial fill (an outage); after the reconnect the first news of the
    order is its cancel, sent by another program, with 4 shares filled. The fill is read over
    REST and reported before the order's end, never after it (the mirror would be asked to
    fill a cancelled order)."""
    with FakeAlpaca(tape(AAPL=flat(6))) as fake, broker(fake) as b:
        assert b.wait_connected()
        ev = Events(b)
        fake.partial_fills(qty=4)
        b.submit(entry(1))
        fake.stream_outage()
        fake.advance()  # 4 of 10 fill; the stream's message is lost
        assert [e.event for e in fake.lost_events] == ["partial_fill"]
        fake.end_outage()
        assert b.wait_connected(2, timeout_s=10.0)
        deadline = time.monotonic() + 10  # bounded: until the fake has the listener again
        while fake.hub.listening() < 1 and time.monotonic() < deadline:
            time.sleep(0.01)  # (connected is before "listen": the cancel would be lost)
        assert fake.hub.listening() == 1
        heard = b.stream_received
        (order,) = [o for o in fake.orders() if o["client_order_id"] == cid(1, "E", 0)]
        headers = {"APCA-API-KEY-ID": fake.key_id, "APCA-API-SECRET-KEY": fake.secret_key}
        gone = requests.delete(f"{fake.url}/v2/orders/{order['id']}", headers=headers, timeout=5)
        assert gone.status_code == 204
        deadline = time.monotonic() + 10  # bounded: until the stream has the cancel
        while b.stream_received == heard and time.monotonic() < deadline:
            time.sleep(0.01)
        assert b.stream_received > heard
        ev.drain()
        kinds = [e.kind.name if isinstance(e, OrderUpdate) else "FILL" for e in ev.all]
        assert kinds == ["ACCEPTED", "FILL", "CANCELED"]
        (fill,) = ev.fills()
        assert (fill.qty, fill.leaves_qty) == (4.0, 6.0)
