"""The fake Alpaca's orders, fills, positions and account, through the real TradingClient.

Bars are hand-made with binary-exact prices, so every fill price, cash and P&L number is
asserted exactly. Fill rules are DESIGN.md's: market at the next open, limit min/max(open, L),
stop max/min(open, S), stop first when both exits are touched, OCO sibling cancelled at the
fill's timestamp.
"""

from __future__ import annotations

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.requests import (
    GetOrderByIdRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)
from fake_alpaca_kit import flat, tape, trading
from kit import bars

from backstop.testing.fake_alpaca import FakeAlpaca

NESTED = GetOrderByIdRequest(nested=True)


def bracket(cid: str, qty: float = 10, tp: float = 103.0, sl: float = 98.0) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol="A",
        qty=qty,
        side="buy",
        time_in_force="gtc",
        order_class="bracket",
        client_order_id=cid,
        take_profit=TakeProfitRequest(limit_price=tp),
        stop_loss=StopLossRequest(stop_price=sl),
    )


def market(symbol: str, qty: float, side: str, cid: str | None = None) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol=symbol, qty=qty, side=side, time_in_force="day", client_order_id=cid
    )


def bracket_tape(third: tuple[float, float, float, float]):
    return tape(A=[(100, 100, 100, 100), (100.5, 101, 100, 100.75), third])


def test_bracket_entry_fills_at_next_open_and_legs_go_from_held_to_new():
    with FakeAlpaca(bracket_tape((101, 101, 101, 101))) as fake:
        tc = trading(fake)
        sent = tc.submit_order(bracket("entry-1"))
        assert sent.status.value == "accepted"
        assert [(leg.type.value, leg.status.value) for leg in sent.legs] == [
            ("limit", "held"),
            ("stop", "held"),
        ]
        assert fake.advance()
        got = tc.get_order_by_client_id("entry-1")
        assert (got.status.value, got.filled_avg_price, got.filled_qty) == ("filled", "100.5", "10")
        assert got.legs is None  # legs only with nested=True
        nested = tc.get_order_by_id(got.id, NESTED)
        assert [(leg.status.value, leg.side.value, leg.qty) for leg in nested.legs] == [
            ("new", "sell", "10"),
            ("new", "sell", "10"),
        ]
        assert (nested.legs[0].limit_price, nested.legs[1].stop_price) == ("103", "98")
        assert got.filled_at.isoformat() == "2024-01-02T14:31:00+00:00"


def test_take_profit_fill_cancels_the_stop_at_the_same_timestamp():
    with FakeAlpaca(bracket_tape((101, 103.5, 100.5, 103))) as fake:
        tc = trading(fake)
        parent = tc.submit_order(bracket("entry-tp"))
        fake.advance(2)
        tp, sl = tc.get_order_by_id(parent.id, NESTED).legs
        assert (tp.status.value, tp.filled_avg_price) == ("filled", "103")
        assert sl.status.value == "canceled"
        assert sl.canceled_at == tp.filled_at
        assert tp.filled_at.isoformat() == "2024-01-02T14:32:00+00:00"
        assert tc.get_all_positions() == []
        assert tc.get_account().cash == "100025"  # 100000 - 10 x 100.5 + 10 x 103


def test_stop_fills_first_when_both_exits_are_touched_in_one_bar():
    with FakeAlpaca(bracket_tape((101, 104, 97, 100))) as fake:
        tc = trading(fake)
        parent = tc.submit_order(bracket("entry-both"))
        fake.advance(2)
        tp, sl = tc.get_order_by_id(parent.id, NESTED).legs
        assert (sl.status.value, sl.filled_avg_price) == ("filled", "98")
        assert tp.status.value == "canceled"
        assert tc.get_account().cash == "99975"  # 100000 - 1005 + 980


def test_a_gap_through_the_stop_fills_at_the_open():
    with FakeAlpaca(bracket_tape((96, 97, 95, 96.5))) as fake:
        tc = trading(fake)
        parent = tc.submit_order(bracket("entry-gap"))
        fake.advance(2)
        _, sl = tc.get_order_by_id(parent.id, NESTED).legs
        assert sl.filled_avg_price == "96"


def test_bracket_legs_on_the_wrong_side_of_the_price_are_refused_422():
    with FakeAlpaca(bracket_tape((101, 101, 101, 101))) as fake:
        with pytest.raises(APIError) as err:
            trading(fake).submit_order(bracket("bad-tp", tp=99.0, sl=98.0))
        assert (err.value.status_code, err.value.code) == (422, 42210000)
        assert "take_profit.limit_price must be >= base_price + 0.01" in err.value.message
        assert fake.orders() == []


def test_replace_makes_a_new_order_and_marks_the_old_one_replaced():
    frame = tape(A=[(100, 100, 100, 100), (99.75, 100, 99.5, 99.75)])
    with FakeAlpaca(frame) as fake:
        tc = trading(fake)
        old = tc.submit_order(
            LimitOrderRequest(
                symbol="A", qty=5, side="buy", time_in_force="gtc", limit_price=99,
                client_order_id="lim-1",
            )
        )  # fmt: skip
        new = tc.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=100))
        assert new.id != old.id and new.replaces == old.id and new.limit_price == "100"
        before = tc.get_order_by_id(old.id)
        assert (before.status.value, before.replaced_by) == ("replaced", new.id)
        fake.advance()
        after = tc.get_order_by_id(new.id)
        assert (after.status.value, after.filled_avg_price) == ("filled", "99.75")


def test_cancel_then_the_client_id_stays_taken_422():
    with FakeAlpaca(tape(A=flat(3))) as fake:
        tc = trading(fake)
        order = tc.submit_order(
            LimitOrderRequest(
                symbol="A", qty=1, side="buy", time_in_force="gtc", limit_price=90,
                client_order_id="once",
            )
        )  # fmt: skip
        assert tc.cancel_order_by_id(order.id) is None  # 204, no body
        assert tc.get_order_by_id(order.id).status.value == "canceled"
        with pytest.raises(APIError) as again:
            tc.cancel_order_by_id(order.id)
        assert again.value.status_code == 422
        assert again.value.message == 'order is already in "canceled" state'
        with pytest.raises(APIError) as dup:
            tc.submit_order(market("A", 1, "buy", cid="once"))
        assert (dup.value.status_code, dup.value.code) == (422, 40010001)
        assert dup.value.message == "client_order_id must be unique"


def test_positions_account_and_qty_available_after_a_hand_computed_sequence():
    frame = tape(
        A=[(100, 100, 100, 100), (100, 101, 100, 101), (102, 102, 102, 102)],
        B=flat(3, 50.0),
    )
    with FakeAlpaca(frame) as fake:
        tc = trading(fake)
        tc.submit_order(market("A", 10, "buy"))
        fake.advance()
        pos = tc.get_open_position("A")
        assert (pos.qty, pos.avg_entry_price, pos.market_value) == ("10", "100", "1010")
        assert tc.get_account().cash == "99000"
        tc.submit_order(market("A", 4, "sell"))
        tc.submit_order(market("B", 3, "sell"))  # flat: opens a short
        fake.advance()
        a = tc.get_open_position("A")
        assert (a.qty, a.avg_entry_price, a.cost_basis, a.unrealized_pl) == (
            "6",
            "100",
            "600",
            "12",
        )
        b = tc.get_open_position("B")
        assert (b.qty, b.side.value, b.market_value, b.qty_available) == (
            "-3",
            "short",
            "-150",
            "-3",
        )
        account = tc.get_account()
        # 99000 + 4 x 102 + 3 x 50 = 99558; equity = cash + 6 x 102 - 3 x 50
        assert (account.cash, account.equity) == ("99558", "100020")
        assert (account.long_market_value, account.short_market_value) == ("612", "-150")
        tc.submit_order(
            LimitOrderRequest(symbol="A", qty=2, side="sell", time_in_force="gtc", limit_price=110)
        )
        assert tc.get_open_position("A").qty_available == "4"


def test_an_order_that_would_cross_zero_is_refused_403():
    frame = tape(A=[(100, 100, 100, 100), (100, 100, 100, 100)], B=flat(2, 50.0))
    with FakeAlpaca(frame) as fake:
        tc = trading(fake)
        tc.submit_order(market("A", 10, "buy"))
        tc.submit_order(market("B", 3, "sell"))
        fake.advance()
        with pytest.raises(APIError) as long_err:
            tc.submit_order(market("A", 15, "sell"))
        assert (long_err.value.status_code, long_err.value.code) == (403, 40310000)
        assert long_err.value.message == (
            "insufficient qty available for order (requested: 15, available: 10)"
        )
        with pytest.raises(APIError) as short_err:
            tc.submit_order(market("B", 5, "buy"))
        assert short_err.value.message == (
            "insufficient qty available for order (requested: 5, available: 3)"
        )


def test_oco_exit_pair_holds_the_position_once_and_cancels_the_other_leg():
    frame = tape(A=[(100, 100, 100, 100), (100, 100, 100, 100), (101, 106, 100, 105)])
    with FakeAlpaca(frame) as fake:
        tc = trading(fake)
        tc.submit_order(market("A", 10, "buy"))
        fake.advance()
        oco = tc.submit_order(
            LimitOrderRequest(
                symbol="A", qty=10, side="sell", time_in_force="gtc", order_class="oco",
                take_profit=TakeProfitRequest(limit_price=105),
                stop_loss=StopLossRequest(stop_price=95),
            )
        )  # fmt: skip
        assert tc.get_open_position("A").qty_available == "0"
        fake.advance()
        got = tc.get_order_by_id(oco.id, NESTED)
        assert (got.type.value, got.status.value, got.filled_avg_price) == (
            "limit",
            "filled",
            "105",
        )
        assert got.legs[0].status.value == "canceled"
        assert got.legs[0].canceled_at == got.filled_at


def test_trailing_stop_ratchets_with_the_high_and_fills_at_its_level():
    frame = tape(
        A=[(100, 100, 100, 100), (100, 100, 100, 100), (100, 105, 100, 104), (104, 104, 102, 102.5)]
    )
    with FakeAlpaca(frame) as fake:
        tc = trading(fake)
        tc.submit_order(market("A", 10, "buy"))
        fake.advance()
        trail = tc.submit_order(
            TrailingStopOrderRequest(
                symbol="A", qty=10, side="sell", time_in_force="gtc", trail_price=2
            )
        )
        assert (trail.hwm, trail.stop_price) == ("100", "98")
        fake.advance()
        mid = tc.get_order_by_id(trail.id)
        assert (mid.status.value, mid.hwm, mid.stop_price) == ("new", "105", "103")
        fake.advance()
        assert tc.get_order_by_id(trail.id).filled_avg_price == "103"


def test_stop_limit_gapped_beyond_its_limit_rests_as_a_limit_from_the_next_bar():
    frame = tape(A=[(100, 100, 100, 100), (102, 102.5, 102, 102), (101.25, 101.5, 101, 101)])
    with FakeAlpaca(frame) as fake:
        tc = trading(fake)
        order = tc.submit_order(
            StopLimitOrderRequest(
                symbol="A", qty=1, side="buy", time_in_force="gtc", stop_price=101,
                limit_price=101.5,
            )
        )  # fmt: skip
        fake.advance()
        assert tc.get_order_by_id(order.id).status.value == "new"
        fake.advance()
        assert tc.get_order_by_id(order.id).filled_avg_price == "101.25"


def test_day_orders_expire_on_the_next_new_york_day_and_ioc_cancels_its_rest():
    midnight = 1_704_258_000_000_000_000  # 2024-01-03 05:00 UTC = 00:00 New York
    stamps = [midnight - 120_000_000_000, midnight - 60_000_000_000, midnight]
    with FakeAlpaca(bars(flat(3), symbol="A", ts=stamps)) as fake:
        tc = trading(fake)
        limit = dict(symbol="A", qty=1, side="buy", limit_price=90)
        day = tc.submit_order(LimitOrderRequest(**limit, time_in_force="day"))
        gtc = tc.submit_order(LimitOrderRequest(**limit, time_in_force="gtc"))
        ioc = tc.submit_order(LimitOrderRequest(**limit, time_in_force="ioc"))
        fake.advance()
        assert tc.get_order_by_id(ioc.id).status.value == "canceled"
        assert tc.get_order_by_id(day.id).status.value == "new"
        fake.advance()
        expired = tc.get_order_by_id(day.id)
        assert expired.status.value == "expired"
        assert expired.expired_at.isoformat() == "2024-01-03T05:00:00+00:00"
        assert tc.get_order_by_id(gtc.id).status.value == "new"


def test_get_orders_filters_status_nested_symbols_limit_and_direction():
    frame = tape(A=flat(3), B=flat(3, 50.0))
    with FakeAlpaca(frame) as fake:
        tc = trading(fake)
        tc.submit_order(bracket("br", tp=101, sl=99))
        tc.submit_order(market("B", 1, "buy", cid="b-mkt"))
        fake.advance()
        tc.submit_order(
            LimitOrderRequest(
                symbol="B", qty=1, side="buy", time_in_force="gtc", limit_price=40,
                client_order_id="b-lim",
            )
        )  # fmt: skip

        def ids(**kw):
            return [o.client_order_id for o in tc.get_orders(GetOrdersRequest(**kw))]

        assert len(ids(status="open")) == 3  # the two bracket legs and b-lim
        # nested: legs only under their parent, which is listed while a leg is open
        assert ids(status="open", nested=True) == ["b-lim", "br"]
        assert ids(status="closed", direction="asc") == ["br", "b-mkt"]
        assert ids(status="all", symbols=["B"], direction="asc") == ["b-mkt", "b-lim"]
        assert ids(status="all", symbols=["B"], limit=1) == ["b-lim"]
        nested = tc.get_orders(GetOrdersRequest(status="all", nested=True, symbols=["A"]))
        assert [len(o.legs) for o in nested] == [2]
        headers = {"APCA-API-KEY-ID": "k", "APCA-API-SECRET-KEY": "s"}
        bad = requests.patch(
            f"{fake.url}/v2/orders/{nested[0].id}", json=[1], headers=headers, timeout=5
        )
        assert (bad.status_code, bad.json()["message"]) == (
            422,
            "request body must be a JSON object",
        )
        assert fake.bugs == []


def test_clock_follows_the_tape_across_a_new_york_midnight():
    midnight = 1_704_258_000_000_000_000  # 2024-01-03 05:00 UTC = 00:00 New York
    stamps = [midnight - 120_000_000_000, midnight - 60_000_000_000, midnight]
    with FakeAlpaca(bars(flat(3), symbol="A", ts=stamps)) as fake:
        tc = trading(fake)
        clock = tc.get_clock()
        assert (clock.is_open, clock.timestamp.isoformat()) == (True, "2024-01-03T04:58:00+00:00")
        assert clock.next_close.isoformat() == "2024-01-03T05:00:00+00:00"
        fake.advance()
        clock = tc.get_clock()  # the day's last bar is delivered: closed until the next day
        assert (clock.is_open, clock.next_open.isoformat()) == (False, "2024-01-03T05:00:00+00:00")
        assert clock.next_close.isoformat() == "2024-01-03T05:01:00+00:00"


def test_assets_positions_404_close_position_and_cancel_all():
    with FakeAlpaca(tape(A=flat(3), B=flat(3, 50.0))) as fake:
        tc = trading(fake)
        asset = tc.get_asset("B")
        assert (asset.symbol, asset.exchange.value, asset.shortable) == ("B", "NASDAQ", True)
        with pytest.raises(APIError) as err:
            tc.get_open_position("A")
        assert (err.value.status_code, err.value.code) == (404, 40410000)
        tc.submit_order(market("A", 2, "buy"))
        fake.advance()
        closing = tc.close_position("A")
        assert (closing.side.value, closing.qty, closing.type.value) == ("sell", "2", "market")
        resting = [
            tc.submit_order(
                LimitOrderRequest(symbol=s, qty=1, side="buy", time_in_force="gtc", limit_price=10)
            )
            for s in ("A", "B")
        ]
        cancelled = tc.cancel_orders()
        assert sorted(str(c.id) for c in cancelled) == sorted(
            [str(closing.id)] + [str(o.id) for o in resting]
        )
        assert {c.status for c in cancelled} == {200}
        assert tc.get_orders(GetOrdersRequest(status="open")) == []
        fake.advance()
        assert tc.get_open_position("A").qty == "2"  # the close was cancelled before a bar


def test_pandas_bars_with_datetimes_and_orders_filtered_by_submission_time():
    import pandas as pd

    frame = pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-02 14:30", periods=3, freq="min", tz="UTC"),
            "symbol": "A",
            "open": 100.0,
            "high": 100.0,
            "low": 100.0,
            "close": 100.0,
            "volume": 1000.0,
        }
    )
    with FakeAlpaca(frame) as fake:
        tc = trading(fake)
        first = tc.submit_order(market("A", 1, "buy", cid="at-1430"))
        fake.advance()
        tc.submit_order(market("A", 1, "buy", cid="at-1431"))
        after = tc.get_orders(GetOrdersRequest(status="all", after=first.submitted_at))
        until = tc.get_orders(GetOrdersRequest(status="all", until="2024-01-02T14:31:00Z"))
        assert [o.client_order_id for o in after] == ["at-1431"]
        assert [o.client_order_id for o in until] == ["at-1430"]


def test_cancelling_an_oco_cancels_its_stop_leg_and_a_bracket_cancels_held_legs():
    with FakeAlpaca(tape(A=flat(3))) as fake:
        tc = trading(fake)
        tc.submit_order(market("A", 10, "buy"))
        fake.advance()
        oco = tc.submit_order(
            LimitOrderRequest(
                symbol="A", qty=10, side="sell", time_in_force="gtc", order_class="oco",
                take_profit=TakeProfitRequest(limit_price=105),
                stop_loss=StopLossRequest(stop_price=95),
            )
        )  # fmt: skip
        tc.cancel_order_by_id(oco.id)
        got = tc.get_order_by_id(oco.id, NESTED)
        assert (got.status.value, got.legs[0].status.value) == ("canceled", "canceled")
        entry = tc.submit_order(bracket("to-cancel", tp=101, sl=99))
        tc.cancel_order_by_id(entry.id)
        legs = tc.get_order_by_id(entry.id, NESTED).legs
        assert [leg.status.value for leg in legs] == ["canceled", "canceled"]
        assert tc.get_open_position("A").qty_available == "10"


def test_tick_check_refuses_sub_penny_prices_422():
    with FakeAlpaca(tape(A=flat(2), P=flat(2, 0.5)), tick_check=True) as fake:
        tc = trading(fake)

        def limit(symbol: str, price: float):
            return LimitOrderRequest(
                symbol=symbol, qty=1, side="buy", time_in_force="gtc", limit_price=price
            )

        with pytest.raises(APIError) as err:
            tc.submit_order(limit("A", 99.125))
        assert (err.value.status_code, err.value.code) == (422, 42210000)
        assert err.value.message == (
            "invalid limit_price 99.125. sub-penny increment does not fulfill minimum pricing "
            "criteria"
        )
        assert tc.submit_order(limit("A", 99.12)).limit_price == "99.12"
        assert tc.submit_order(limit("P", 0.4925)).limit_price == "0.4925"
        with pytest.raises(APIError):
            tc.submit_order(bracket("sub-penny-leg", tp=103.005))


def test_close_all_positions_reports_each_symbol_and_can_cancel_orders_first():
    with FakeAlpaca(tape(A=flat(3), B=flat(3, 50.0))) as fake:
        tc = trading(fake)
        tc.submit_order(market("A", 2, "buy"))
        tc.submit_order(market("B", 3, "buy"))
        fake.advance()
        tc.submit_order(
            LimitOrderRequest(symbol="B", qty=3, side="sell", time_in_force="gtc", limit_price=60)
        )
        results = tc.close_all_positions()
        assert [(r.symbol, r.status) for r in results] == [("A", 200), ("B", 403)]
        assert results[1].body.message == (
            "insufficient qty available for order (requested: 3, available: 0)"
        )
        again = tc.close_all_positions(cancel_orders=True)  # A's unfilled close is cancelled too
        assert [(r.symbol, r.status, r.body.side.value) for r in again] == [
            ("A", 200, "sell"),
            ("B", 200, "sell"),
        ]
