"""The Alpaca adapter's pure parts: commands to alpaca-py requests, Alpaca's JSON (validated by
alpaca-py's own models) to backstop's records, client ids of legs and replacements, and the
once-only translation of order news into events. No network."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from alpaca.data.models import BarSet
from alpaca.trading.models import Position, TradeAccount, TradeUpdate

from backstop.brokers.alpaca import parsing
from backstop.brokers.alpaca.ids import IdBook, derived_leg_id, parent_candidates
from backstop.brokers.alpaca.translate import Translator
from backstop.data.schema import BAR_SCHEMA
from backstop.domain.commands import AmendOrder, SubmitOrder
from backstop.domain.enums import OrderRole, OrderStatus, OrderType, Side, TimeInForce
from backstop.domain.events import (
    Account,
    BrokerPosition,
    Execution,
    OrderUpdate,
    OrderUpdateKind,
)
from backstop.errors import ConfigError, DataError

T0 = "2024-01-02T14:30:00.123456Z"
T0_NS = 1704205800_123456000


def _entry(**kw: Any) -> SubmitOrder:
    base: dict[str, Any] = dict(client_order_id="bs-r1-3-E-0", symbol="AAPL", side=Side.BUY, qty=10)
    return SubmitOrder(**(base | kw))


def _leg(role: OrderRole, leg_no: int, **kw: Any) -> SubmitOrder:
    base: dict[str, Any] = dict(
        client_order_id=f"bs-r1-3-{'SL' if role == OrderRole.STOP_LOSS else 'TP'}-{leg_no}",
        symbol="AAPL",
        side=Side.SELL,
        qty=10,
        role=role,
        reduce_only=True,
        parent_id="bs-r1-3-E-0",
    )
    if role == OrderRole.STOP_LOSS:
        base |= dict(order_type=OrderType.STOP, stop_price=95.0)
    else:
        base |= dict(order_type=OrderType.LIMIT, limit_price=110.0)
    return SubmitOrder(**(base | kw))


def order_json(**kw: Any) -> dict[str, Any]:
    """An order as Alpaca's REST API sends it (numbers as strings)."""
    base: dict[str, Any] = {
        "id": "61e69015-8549-4bfd-b9c3-01e75843f47d",
        "client_order_id": "bs-r1-3-E-0",
        "created_at": T0,
        "updated_at": T0,
        "submitted_at": T0,
        "filled_at": None,
        "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
        "symbol": "AAPL",
        "asset_class": "us_equity",
        "qty": "10",
        "filled_qty": "0",
        "filled_avg_price": None,
        "order_class": "simple",
        "order_type": "market",
        "type": "market",
        "side": "buy",
        "time_in_force": "gtc",
        "limit_price": None,
        "stop_price": None,
        "status": "new",
        "extended_hours": False,
        "legs": None,
        "trail_percent": None,
        "trail_price": None,
        "hwm": None,
    }
    return base | kw


# ---------------------------------------------------------------- outbound


def test_a_market_entry_with_both_legs_is_one_bracket_request() -> None:
    cmd = _entry(legs=(_leg(OrderRole.STOP_LOSS, 1), _leg(OrderRole.TAKE_PROFIT, 2)))
    assert parsing.order_request(cmd).to_request_fields() == {
        "symbol": "AAPL",
        "qty": 10.0,
        "side": "buy",
        "type": "market",
        "time_in_force": "gtc",
        "order_class": "bracket",
        "client_order_id": "bs-r1-3-E-0",
        "take_profit": {"limit_price": 110.0},
        "stop_loss": {"stop_price": 95.0},
    }


def test_one_leg_is_an_oto_and_a_stop_limit_leg_keeps_its_limit() -> None:
    sl = _leg(OrderRole.STOP_LOSS, 1, order_type=OrderType.STOP_LIMIT, limit_price=94.5)
    cmd = _entry(order_type=OrderType.LIMIT, limit_price=100.0, tif=TimeInForce.DAY, legs=(sl,))
    assert parsing.order_request(cmd).to_request_fields() == {
        "symbol": "AAPL",
        "qty": 10.0,
        "side": "buy",
        "type": "limit",
        "limit_price": 100.0,
        "time_in_force": "day",
        "order_class": "oto",
        "client_order_id": "bs-r1-3-E-0",
        "stop_loss": {"stop_price": 95.0, "limit_price": 94.5},
    }


def test_an_oco_pair_goes_out_under_its_take_profit_as_the_primary() -> None:
    sl = _leg(OrderRole.STOP_LOSS, 1, parent_id=None, oco_group="g3")
    tp = _leg(OrderRole.TAKE_PROFIT, 2, parent_id=None, oco_group="g3")
    cmd = replace(sl, siblings=(tp,))
    assert parsing.order_request(cmd).to_request_fields() == {
        "symbol": "AAPL",
        "qty": 10.0,
        "side": "sell",
        "type": "limit",
        "time_in_force": "gtc",
        "order_class": "oco",
        "client_order_id": "bs-r1-3-TP-2",
        "take_profit": {"limit_price": 110.0},
        "stop_loss": {"stop_price": 95.0},
    }


def test_plain_orders_of_every_type_and_tif() -> None:
    def req(**kw: Any) -> dict[str, Any]:
        return parsing.order_request(_entry(**kw)).to_request_fields()

    assert req(order_type=OrderType.STOP, stop_price=101.0, tif=TimeInForce.IOC) == {
        "symbol": "AAPL",
        "qty": 10.0,
        "side": "buy",
        "type": "stop",
        "stop_price": 101.0,
        "time_in_force": "ioc",
        "client_order_id": "bs-r1-3-E-0",
    }
    limit = req(order_type=OrderType.STOP_LIMIT, stop_price=101.0, limit_price=101.5)
    assert (limit["type"], limit["stop_price"], limit["limit_price"]) == (
        "stop_limit",
        101.0,
        101.5,
    )
    trail = req(order_type=OrderType.TRAILING_STOP, trail_percent=0.02, side=Side.SELL)
    assert (trail["type"], trail["trail_percent"], trail["side"]) == ("trailing_stop", 2.0, "sell")
    assert "reduce_only" not in req(reduce_only=True)  # backstop's own guard: nothing to send


def test_a_bracket_alpaca_cannot_express_names_the_leg() -> None:
    trail = replace(
        _leg(OrderRole.STOP_LOSS, 1),
        client_order_id="bs-r1-3-TS-1",
        role=OrderRole.TRAILING,
        order_type=OrderType.TRAILING_STOP,
        stop_price=None,
        trail_percent=0.03,
    )
    with pytest.raises(ConfigError, match="TRAILING_STOP cannot be placed") as err:
        parsing.order_request(_entry(legs=(trail,)))
    assert err.value.key == "bs-r1-3-TS-1"
    short = _leg(OrderRole.TAKE_PROFIT, 2, qty=4)
    with pytest.raises(ConfigError, match="entry's quantity 10") as err:
        parsing.order_request(_entry(legs=(short,)))
    assert err.value.key == "bs-r1-3-TP-2"


def test_an_amend_is_a_replace_under_the_replacement_client_id() -> None:
    cmd = AmendOrder("bs-r1-3-SL-1", qty=6.0, stop_price=96.5)
    assert parsing.replace_request(cmd, "bs-r1-3-SL-1.1").to_request_fields() == {
        "qty": 6,
        "stop_price": 96.5,
        "client_order_id": "bs-r1-3-SL-1.1",
    }
    with pytest.raises(ConfigError, match=r"whole shares only, not 6\.5") as err:
        parsing.replace_request(AmendOrder("bs-r1-3-SL-1", qty=6.5), "bs-r1-3-SL-1.1")
    assert err.value.key == "bs-r1-3-SL-1"


# ---------------------------------------------------------------- inbound


def test_an_order_with_nested_legs_converts_exactly() -> None:
    legs = [
        order_json(
            id="7a9f3b8e-0000-4000-8000-000000000001",
            client_order_id="a9c3f0d2-alpaca-named",
            type="stop",
            order_type="stop",
            side="sell",
            stop_price="95.13",
            status="held",
        ),
        order_json(
            id="7a9f3b8e-0000-4000-8000-000000000002",
            client_order_id="b1d4e5f6-alpaca-named",
            type="limit",
            order_type="limit",
            side="sell",
            limit_price="110.07",
            status="held",
        ),
    ]
    data = order_json(
        order_class="bracket",
        status="partially_filled",
        filled_qty="3",
        filled_avg_price="100.015",
        legs=legs,
        updated_at="2024-01-02T14:31:00Z",
    )
    snap = parsing.order_from_json(data)
    assert (snap.broker_order_id, snap.client_order_id) == (data["id"], "bs-r1-3-E-0")
    assert (snap.qty, snap.filled_qty, snap.avg_fill_price) == (10.0, 3.0, 100.015)
    assert (snap.created_ns, snap.updated_ns) == (T0_NS, 1704205860_000000000)
    assert (snap.order_class, snap.status, snap.side) == ("bracket", "partially_filled", Side.BUY)
    stop, target = snap.legs
    assert (stop.order_type, stop.stop_price, stop.status) == (OrderType.STOP, 95.13, "held")
    assert (target.order_type, target.limit_price) == (OrderType.LIMIT, 110.07)
    assert [s.broker_order_id for s in snap.flat()] == [data["id"], legs[0]["id"], legs[1]["id"]]
    bo = parsing.broker_order(snap, "bs-r1-3-E-0", None)
    assert (bo.status, bo.remaining, bo.tif) == (OrderStatus.PARTIALLY_FILLED, 7.0, TimeInForce.GTC)
    held = parsing.broker_order(stop, "bs-r1-3-SL-1", "bs-r1-3-E-0")
    assert (held.status, held.parent_id, held.side) == (
        OrderStatus.ACCEPTED,
        "bs-r1-3-E-0",
        Side.SELL,
    )


def test_a_trailing_stop_reads_back_as_a_fraction() -> None:
    snap = parsing.order_from_json(
        order_json(type="trailing_stop", order_type="trailing_stop", trail_percent="2.5")
    )
    assert (snap.order_type, snap.trail_percent, snap.is_stop) == (
        OrderType.TRAILING_STOP,
        0.025,
        True,
    )


def test_a_fill_update_keeps_the_execution_id() -> None:
    update = TradeUpdate(
        event="fill",
        execution_id="0d3c5b2a-1111-4222-8333-444455556666",
        order=order_json(status="filled", filled_qty="10", filled_avg_price="100.5"),
        timestamp=T0,
        price="100.5",
        qty="10",
        position_qty="10",
    )
    got = parsing.stream_update(update)
    assert (got.event, got.exec_id, got.price, got.qty, got.position_qty) == (
        "fill",
        "0d3c5b2a-1111-4222-8333-444455556666",
        100.5,
        10.0,
        10.0,
    )
    assert got.ts_event == T0_NS and got.order.filled_qty == 10.0


def test_a_fill_activity_carries_the_execution_id_part_of_its_id() -> None:
    act = parsing.fill_activity(
        {
            "id": "20240102143000123::0d3c5b2a-1111-4222-8333-444455556666",
            "account_id": "c8f1ef5d-edc0-4f23-9ee4-378f19cb92a4",
            "activity_type": "FILL",
            "transaction_time": T0,
            "type": "partial_fill",
            "price": "100.25",
            "qty": "4",
            "side": "sell",
            "symbol": "AAPL",
            "leaves_qty": "6",
            "order_id": "61e69015-8549-4bfd-b9c3-01e75843f47d",
            "cum_qty": "4",
            "order_status": "partially_filled",
        }
    )
    assert (act.exec_id, act.side, act.qty, act.price, act.leaves_qty, act.cum_qty) == (
        "0d3c5b2a-1111-4222-8333-444455556666",
        Side.SELL,
        4.0,
        100.25,
        6.0,
        4.0,
    )
    assert act.ts_event == T0_NS


def test_positions_are_signed_and_the_account_is_exact() -> None:
    common = {
        "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
        "exchange": "NASDAQ",
        "asset_class": "us_equity",
        "cost_basis": "1000.1",
    }
    long = Position(symbol="AAPL", qty="10", side="long", avg_entry_price="100.01", **common)
    short = Position(symbol="MSFT", qty="-7", side="short", avg_entry_price="350.5", **common)
    assert parsing.broker_position(long) == BrokerPosition("AAPL", 10.0, 100.01)
    assert parsing.broker_position(short) == BrokerPosition("MSFT", -7.0, 350.5)
    acct = TradeAccount(
        id="c8f1ef5d-edc0-4f23-9ee4-378f19cb92a4",
        account_number="PA1",
        status="ACTIVE",
        equity="100123.45",
        cash="98765.4",
        buying_power="197530.8",
    )
    assert parsing.account_snapshot(acct) == Account(100123.45, 98765.4, 197530.8)
    partial = TradeAccount(
        id="c8f1ef5d-edc0-4f23-9ee4-378f19cb92a4", account_number="PA1", status="ACTIVE", cash="1"
    )
    with pytest.raises(DataError, match="Alpaca: Alpaca's account has no equity"):
        parsing.account_snapshot(partial)  # a missing number is an error, never a zero


def test_bars_come_back_in_the_bar_schema_in_time_then_symbol_order() -> None:
    def bar(t: str, c: float) -> dict[str, Any]:
        return {"t": t, "o": c - 1, "h": c + 1, "l": c - 2, "c": c, "v": 100, "n": 1, "vw": c}

    barset = BarSet(
        {
            "MSFT": [bar("2024-01-02T14:30:00Z", 370.0)],
            "AAPL": [bar("2024-01-02T14:30:00Z", 185.0), bar("2024-01-02T14:31:00Z", 186.0)],
        }
    )
    frame = parsing.bars_frame(barset)
    assert frame.schema == BAR_SCHEMA
    assert frame["symbol"].to_list() == ["AAPL", "MSFT", "AAPL"]
    assert frame["ts"].to_list() == [1704205800 * 10**9, 1704205800 * 10**9, 1704205860 * 10**9]
    assert frame["close"].to_list() == [185.0, 370.0, 186.0]
    with pytest.raises(ConfigError, match="'1Minute' is not one of") as err:
        parsing.timeframe("1Minute")
    assert err.value.key == "timeframe"
    assert str(parsing.timeframe("5Min").value) == "5Min"


def test_times_convert_to_exact_nanoseconds() -> None:
    when = datetime(2024, 1, 2, 14, 30, 0, 123456, tzinfo=UTC)
    assert parsing.ts_ns(when) == T0_NS
    assert parsing.ns_datetime(T0_NS + 999) == when  # below a microsecond: rounded down


# ---------------------------------------------------------------- client ids


def _snap(**kw: Any) -> parsing.OrderSnapshot:
    return parsing.order_from_json(order_json(**kw))


def test_legs_alpaca_named_get_the_exchange_numbering_after_a_restart() -> None:
    stop = _snap(type="stop", order_type="stop", stop_price="95", client_order_id="x1", side="sell")
    target = _snap(type="limit", order_type="limit", limit_price="110", client_order_id="x2")
    trail = _snap(type="trailing_stop", order_type="trailing_stop", trail_percent="1")
    assert derived_leg_id("bs-r1-3-E-4", stop) == "bs-r1-3-SL-5"
    assert derived_leg_id("bs-r1-3-E-4", target) == "bs-r1-3-TP-6"
    assert derived_leg_id("bs-r1-3-E-4", trail) == "bs-r1-3-TS-5"
    assert derived_leg_id("bs-r1-3-TP-2", stop) == "bs-r1-3-SL-1"  # an OCO's stop sibling
    assert derived_leg_id("manual-7", stop) is None
    assert parent_candidates("bs-r1-3-SL-5") == ["bs-r1-3-E-4", "bs-r1-3-TP-6"]
    assert parent_candidates("bs-r1-3-TP-6") == ["bs-r1-3-E-4"]
    assert parent_candidates("bs-r1-3-E-0") == []


def test_the_id_book_prefers_the_ids_the_command_gave_and_follows_replacements() -> None:
    book = IdBook()
    sl = _leg(OrderRole.STOP_LOSS, 7)  # not the exchange's numbering: memory wins
    book.expect(_entry(legs=(sl,)))
    leg_id = "7a9f3b8e-0000-4000-8000-000000000001"
    leg = order_json(id=leg_id, client_order_id="x1", type="stop", order_type="stop")
    parent = parsing.order_from_json(order_json(order_class="oto", legs=[leg]))
    assert book.learn(parent) == "bs-r1-3-E-0"
    assert (book.known(leg_id), book.parent_of(leg_id)) == ("bs-r1-3-SL-7", "bs-r1-3-E-0")
    new_id = "7a9f3b8e-0000-4000-8000-000000000009"
    new = _snap(id=new_id, client_order_id="bs-r1-3-SL-7.1", replaces=leg_id, type="stop")
    assert book.learn(new) == "bs-r1-3-SL-7"
    assert (book.live("bs-r1-3-SL-7"), book.parent_of(new_id)) == (new_id, "bs-r1-3-E-0")
    stale = _snap(id=leg_id, client_order_id="x1", type="stop", order_type="stop")
    book.learn(stale, "bs-r1-3-E-0")  # an old message about the replaced leg
    assert book.live("bs-r1-3-SL-7") == new_id
    foreign = _snap(id="7a9f3b8e-0000-4000-8000-00000000000f", client_order_id="by-hand")
    assert book.learn(foreign) == "by-hand"
    # a leg listed on its own (its entry filled) before its entry: named again with the entry
    orphan_id = "7a9f3b8e-0000-4000-8000-0000000000aa"
    orphan = order_json(id=orphan_id, client_order_id="x7", type="limit", order_type="limit")
    assert book.learn(parsing.order_from_json(orphan)) == "x7"
    entry = order_json(id="7a9f3b8e-0000-4000-8000-0000000000ab", client_order_id="bs-r1-4-E-0")
    book.learn(parsing.order_from_json(entry | {"order_class": "oto", "legs": [orphan]}))
    assert (book.known(orphan_id), book.parent_of(orphan_id)) == ("bs-r1-4-TP-2", "bs-r1-4-E-0")


# ---------------------------------------------------------------- once-only events


def test_a_fill_heard_from_the_stream_and_from_rest_is_one_execution() -> None:
    tr = Translator()
    filled = _snap(status="filled", filled_qty="10", filled_avg_price="100.5")
    update = parsing.StreamUpdate("fill", filled, T0_NS, "e-1", 100.5, 10.0, 10.0)
    first = tr.stream(update, "bs-r1-3-E-0", 5)
    assert [type(e) for e in first] == [OrderUpdate, Execution]
    assert first[0] == OrderUpdate(
        OrderUpdateKind.ACCEPTED, "bs-r1-3-E-0", T0_NS, 5, broker_order_id=filled.broker_order_id
    )
    assert first[1] == Execution(
        "bs-r1-3-E-0", "e-1", "AAPL", Side.BUY, 10.0, 100.5, 0.0, 0.0, T0_NS, 5,
        broker_order_id=filled.broker_order_id,
    )  # fmt: skip
    act = parsing.FillActivity(
        "e-1", "t::e-1", filled.broker_order_id, "AAPL", Side.BUY, 10, 100.5, 0, 10, T0_NS
    )
    assert tr.activity(act, filled, "bs-r1-3-E-0", 6) == []
    # a REST fill whose id differs from the stream's but is the same fill (same cumulative qty)
    other = parsing.FillActivity(
        "e-9", "t::e-9", filled.broker_order_id, "AAPL", Side.BUY, 10, 100.5, 0, 10, T0_NS
    )
    assert tr.activity(other, filled, "bs-r1-3-E-0", 6) == []
    assert tr.stream(update, "bs-r1-3-E-0", 7) == []


def test_statuses_are_reported_once_and_a_replacement_is_replaced() -> None:
    tr = Translator()
    snap = _snap(status="canceled")
    kinds = [e.kind for e in tr.status(snap, "bs-r1-3-E-0", T0_NS, 1)]  # type: ignore[union-attr]
    assert kinds == [OrderUpdateKind.ACCEPTED, OrderUpdateKind.CANCELED]
    assert tr.status(snap, "bs-r1-3-E-0", T0_NS, 2) == []
    new = _snap(
        id="7a9f3b8e-0000-4000-8000-000000000009",
        client_order_id="bs-r1-3-SL-1.1",
        type="stop",
        order_type="stop",
        stop_price="96.5",
        qty="6",
    )
    assert tr.status(new, "bs-r1-3-SL-1", T0_NS, 3) == [
        OrderUpdate(
            OrderUpdateKind.REPLACED, "bs-r1-3-SL-1", T0_NS, 3,
            broker_order_id=new.broker_order_id, qty=6.0, stop_price=96.5,
        )
    ]  # fmt: skip
    assert tr.stream(parsing.StreamUpdate("new", new, T0_NS, "", None, None, None), "x", 4) == []
    refused = tr.refused(["bs-r1-3-E-1"], "insufficient qty available for order", 8, 8)
    assert refused == [
        OrderUpdate(
            OrderUpdateKind.REJECTED, "bs-r1-3-E-1", 8, 8,
            message="insufficient qty available for order",
        )
    ]  # fmt: skip
    assert tr.refused(["bs-r1-3-E-1"], "again", 9, 9) == []
