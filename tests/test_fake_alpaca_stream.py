"""The fake Alpaca's trade_updates websocket with the real TradingStream, outages, restarts."""

from __future__ import annotations

import json

import pytest
import requests
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)
from fake_alpaca_kit import StreamRunner, eventually, flat, tape, trading
from kit import bars
from websockets.sync.client import connect

from backstop.testing.fake_alpaca import FakeAlpaca

BRACKET_BARS = tape(A=[(100, 100, 100, 100), (100.5, 101, 100, 100.75), (101, 103.5, 100.5, 103)])


def bracket(cid: str) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol="A",
        qty=10,
        side="buy",
        time_in_force="gtc",
        order_class="bracket",
        client_order_id=cid,
        take_profit=TakeProfitRequest(limit_price=103),
        stop_loss=StopLossRequest(stop_price=98),
    )


def resting(cid: str, price: float = 90.0) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol="A", qty=1, side="buy", time_in_force="gtc", limit_price=price, client_order_id=cid
    )


def test_stream_delivers_new_fill_and_canceled_in_the_markets_order():
    with FakeAlpaca(BRACKET_BARS) as fake, StreamRunner(fake) as runner:
        tc = trading(fake)
        tc.submit_order(bracket("entry"))
        fake.advance(2)
        expected = [(e.event, e.order.client_order_id) for e in fake.events]
        assert [kind for kind, _ in expected] == ["new", "fill", "new", "new", "fill", "canceled"]
        eventually(lambda: len(runner.seen()) == 6, what="six trade updates")
        assert runner.seen() == expected
        fill = runner.updates[1]
        assert (fill.price, fill.qty, fill.position_qty) == (100.5, 10.0, 10.0)
        assert fill.execution_id is not None
        assert fill.timestamp.isoformat() == "2024-01-02T14:31:00+00:00"
        tp_fill = runner.updates[4]
        assert (tp_fill.price, tp_fill.position_qty, tp_fill.order.status.value) == (
            103.0,
            0.0,
            "filled",
        )
        assert runner.updates[5].timestamp == tp_fill.timestamp
        assert fake.lost_events == []


def test_events_during_an_outage_are_lost_and_rest_shows_them():
    frame = tape(A=[(100, 100, 100, 100), (100, 100, 100, 100), (100, 100, 99, 99), *flat(2, 99)])
    with FakeAlpaca(frame) as fake, StreamRunner(fake) as runner:
        tc = trading(fake)
        tc.submit_order(resting("before", 99.5))
        eventually(lambda: runner.seen() == [("new", "before")], what="the first new")
        fake.stream_outage()
        eventually(lambda: fake.hub.listening() == 0, what="the drop")
        fake.advance(2)  # 'before' fills at 99.5 while nobody can listen
        assert [(e.event, e.order.client_order_id) for e in fake.lost_events] == [
            ("fill", "before")
        ]
        assert tc.get_order_by_client_id("before").status.value == "filled"
        fake.end_outage()
        eventually(lambda: fake.hub.listening() == 1, timeout=10, what="the reconnect")
        tc.submit_order(resting("after"))
        eventually(lambda: runner.seen()[-1:] == [("new", "after")], what="the new after")
        assert runner.seen() == [("new", "before"), ("new", "after")]


def test_silent_outage_accepts_connections_but_delivers_nothing():
    with FakeAlpaca(tape(A=flat(3))) as fake, StreamRunner(fake) as runner:
        tc = trading(fake)
        fake.stream_outage(mode="silent")
        eventually(lambda: fake.hub.listening() == 1, timeout=10, what="the silent reconnect")
        tc.submit_order(resting("unheard"))
        assert [e.order.client_order_id for e in fake.lost_events] == ["unheard"]
        fake.end_outage()
        tc.submit_order(resting("heard"))
        eventually(lambda: runner.seen() == [("new", "heard")], what="the event after")


def test_restart_keeps_orders_positions_and_ports():
    with FakeAlpaca(tape(A=flat(4))) as fake, StreamRunner(fake) as runner:
        tc = trading(fake)
        tc.submit_order(MarketOrderRequest(symbol="A", qty=3, side="buy", time_in_force="day"))
        tc.submit_order(resting("kept"))
        fake.advance()
        url, stream_url = fake.url, fake.stream_url
        fake.go_down()
        with pytest.raises(requests.ConnectionError):
            tc.get_all_positions()
        fake.come_up()
        assert (fake.url, fake.stream_url) == (url, stream_url)
        assert tc.get_order_by_client_id("kept").status.value == "new"
        assert tc.get_open_position("A").qty == "3"
        eventually(lambda: fake.hub.listening() == 1, timeout=10, what="the reconnect")
        tc.submit_order(resting("after-restart"))
        eventually(lambda: ("new", "after-restart") in runner.seen(), what="the event")


def test_stream_answers_wrong_keys_unauthorized():
    with FakeAlpaca(tape(A=flat(2)), keys=("key-1", "secret-1")) as fake:
        with connect(fake.stream_url, open_timeout=5) as ws:
            ws.send(
                json.dumps(
                    {"action": "authenticate", "data": {"key_id": "key-1", "secret_key": "x"}}
                )
            )
            reply = json.loads(ws.recv(timeout=5))
        assert reply["stream"] == "authorization"
        assert reply["data"]["status"] == "unauthorized"
        with connect(fake.stream_url, open_timeout=5) as ws:
            auth = {"key_id": "key-1", "secret_key": "secret-1"}
            ws.send(json.dumps({"action": "authenticate", "data": auth}))
            assert json.loads(ws.recv(timeout=5))["data"] == {
                "status": "authorized",
                "action": "authenticate",
            }
            ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
            assert json.loads(ws.recv(timeout=5)) == {
                "stream": "listening",
                "data": {"streams": ["trade_updates"]},
            }


def test_replace_cancel_and_expiry_reach_the_stream():
    midnight = 1_704_258_000_000_000_000  # 2024-01-03 05:00 UTC = 00:00 New York
    stamps = [midnight - 120_000_000_000, midnight - 60_000_000_000, midnight]
    with FakeAlpaca(bars(flat(3), symbol="A", ts=stamps)) as fake, StreamRunner(fake) as runner:
        tc = trading(fake)
        old = tc.submit_order(resting("first"))
        tc.replace_order_by_id(
            old.id, ReplaceOrderRequest(limit_price=91, client_order_id="second")
        )
        day = LimitOrderRequest(
            symbol="A",
            qty=1,
            side="buy",
            time_in_force="day",
            limit_price=80,
            client_order_id="day",
        )
        tc.submit_order(day)
        tc.cancel_order_by_id(tc.get_order_by_client_id("second").id)
        fake.advance(2)
        want = [
            ("new", "first"),
            ("replaced", "first"),
            ("new", "second"),
            ("new", "day"),
            ("canceled", "second"),
            ("expired", "day"),
        ]
        eventually(lambda: runner.seen() == want, what="the six updates")
        replaced = runner.updates[1].order
        assert str(replaced.replaced_by) == str(tc.get_order_by_client_id("second").id)
