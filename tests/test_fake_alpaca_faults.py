"""The fake Alpaca's fault switches, keys, activities and market data, with real alpaca-py.

alpaca-py retries 429 and 504 by itself (3 retries); the tests set its wait to 0 and count
the requests the fake answered, so "exactly one order at the fake" is checked on the fake.
"""

from __future__ import annotations

import polars as pl
import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest, StockLatestBarRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.client import TradingClient
from alpaca.trading.models import TradeActivity
from alpaca.trading.requests import MarketOrderRequest
from fake_alpaca_kit import flat, tape, trading

from backstop.data import sample_bars
from backstop.errors import ConfigError, DataError
from backstop.testing.fake_alpaca import FakeAlpaca


def buy(qty: float, cid: str | None = None, symbol: str = "A") -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol=symbol, qty=qty, side="buy", time_in_force="gtc", client_order_id=cid
    )


def posts(fake: FakeAlpaca) -> list[int]:
    return [
        status for method, path, status in fake.requests if (method, path) == ("POST", "/v2/orders")
    ]


def test_504_after_accept_retried_by_alpaca_py_leaves_exactly_one_order():
    with FakeAlpaca(tape(A=flat(3))) as fake:
        tc = trading(fake)
        fake.timeout_after_accept()
        with pytest.raises(APIError) as err:
            tc.submit_order(buy(5, cid="maybe-placed"))
        assert (err.value.status_code, err.value.code) == (422, 40010001)
        assert err.value.message == "client_order_id must be unique"
        assert posts(fake) == [504, 422]
        assert [o["client_order_id"] for o in fake.orders()] == ["maybe-placed"]
        assert tc.get_order_by_client_id("maybe-placed").qty == "5"


def test_429_twice_then_success_and_429_past_the_retries_is_an_error():
    with FakeAlpaca(tape(A=flat(3))) as fake:
        tc = trading(fake)
        fake.fail_next(2)
        assert tc.submit_order(buy(1, cid="after-429")).client_order_id == "after-429"
        assert posts(fake) == [429, 429, 200]
        fake.fail_next(4)  # alpaca-py tries 4 times in all
        with pytest.raises(APIError) as err:
            tc.get_account()
        assert (err.value.status_code, err.value.code) == (429, 42910000)
        assert [s for m, p, s in fake.requests if p == "/v2/account"] == [429] * 4
        assert tc.get_account().cash == "100000"


def test_keys_missing_401_and_wrong_403():
    with FakeAlpaca(tape(A=flat(2)), keys=("key-1", "secret-1")) as fake:
        bare = requests.get(f"{fake.url}/v2/account", timeout=5)
        assert (bare.status_code, bare.json()["code"]) == (401, 40110000)
        with pytest.raises(APIError) as err:
            TradingClient("key-1", "wrong", url_override=fake.url).get_account()
        assert err.value.status_code == 403
        assert TradingClient("key-1", "secret-1", url_override=fake.url).get_account().cash


def test_delayed_fills_wait_k_bars():
    with FakeAlpaca(tape(A=[(100 + i, 100 + i, 100 + i, 100 + i) for i in range(5)])) as fake:
        tc = trading(fake)
        fake.delay_fills(2)
        order = tc.submit_order(buy(1))
        fake.advance(2)
        assert tc.get_order_by_id(order.id).status.value == "new"
        fake.advance()
        assert tc.get_order_by_id(order.id).filled_avg_price == "103"  # bar 3, not bar 1


def test_partial_fills_carry_the_rest_to_later_bars():
    with FakeAlpaca(
        tape(
            A=[
                (100, 100, 100, 100),
                (100, 100, 100, 100),
                (104, 104, 104, 104),
                (106, 106, 106, 106),
            ]
        )
    ) as fake:
        tc = trading(fake)
        fake.partial_fills(qty=4)
        order = tc.submit_order(buy(10))
        fake.advance()
        mid = tc.get_order_by_id(order.id)
        assert (mid.status.value, mid.filled_qty, mid.filled_avg_price) == (
            "partially_filled",
            "4",
            "100",
        )
        fake.advance(2)
        done = tc.get_order_by_id(order.id)
        # 4 @ 100, 4 @ 104, 2 @ 106 -> 1028 / 10
        assert (done.status.value, done.filled_qty, done.filled_avg_price) == (
            "filled",
            "10",
            "102.8",
        )
        assert [e.event for e in fake.events] == ["new", "partial_fill", "partial_fill", "fill"]


def test_refuse_at_submit_403_or_by_a_rejected_event():
    with FakeAlpaca(tape(A=flat(2), B=flat(2))) as fake:
        tc = trading(fake)
        fake.refuse(symbol="A")
        with pytest.raises(APIError) as err:
            tc.submit_order(buy(1, symbol="A"))
        assert (err.value.status_code, err.value.code) == (403, 40310000)
        assert "refused" in err.value.message
        assert tc.submit_order(buy(1, symbol="A")).status.value == "accepted"  # count was 1
        fake.refuse(symbol="B", how="rejected")
        sent = tc.submit_order(buy(1, cid="to-reject", symbol="B"))
        assert sent.status.value == "accepted"
        got = tc.get_order_by_client_id("to-reject")
        assert got.status.value == "rejected" and got.failed_at is not None
        assert [(e.event, e.order.client_order_id) for e in fake.events][-1] == (
            "rejected",
            "to-reject",
        )


def test_fill_activities_parse_as_trade_activity_and_page():
    with FakeAlpaca(tape(A=flat(4))) as fake:
        tc = trading(fake)
        first = tc.submit_order(buy(1))
        fake.advance()
        second = tc.submit_order(buy(2))
        fake.advance()
        headers = {"APCA-API-KEY-ID": fake.key_id, "APCA-API-SECRET-KEY": fake.secret_key}
        url = f"{fake.url}/v2/account/activities/FILL"
        rows = requests.get(url, headers=headers, timeout=5).json()
        parsed = [TradeActivity(**row) for row in rows]
        assert [(str(a.order_id), a.qty, a.price) for a in parsed] == [
            (str(second.id), 2.0, 100.0),
            (str(first.id), 1.0, 100.0),
        ]  # newest first
        page = requests.get(
            url, headers=headers, params={"page_size": 1, "page_token": rows[0]["id"]}, timeout=5
        ).json()
        assert [r["order_id"] for r in page] == [str(first.id)]


def test_stock_bars_pages_return_exactly_the_bars_up_to_now():
    frame = sample_bars()
    with FakeAlpaca(frame, start=4001) as fake:  # 3 symbols x 4001 bars: two pages of 10000
        fake.advance(2)
        client = StockHistoricalDataClient(fake.key_id, fake.secret_key, url_override=fake.url)
        got = client.get_stock_bars(
            StockBarsRequest(
                symbol_or_symbols=["SYN000", "SYN001", "SYN002"],
                timeframe=TimeFrame.Minute,
                end="2030-01-01T00:00:00Z",  # the future is cut at the fake's now
            )
        )
        assert [p for m, p, s in fake.requests] == ["/v2/stocks/bars"] * 2
        visible = frame.filter(frame["ts"] <= fake.now)
        assert {s: len(b) for s, b in got.data.items()} == {f"SYN00{k}": 4003 for k in range(3)}
        last = got.data["SYN001"][-1]
        row = visible.filter(visible["symbol"] == "SYN001").tail(1).row(0, named=True)
        assert (int(last.timestamp.timestamp() * 1e9), last.close) == (row["ts"], row["close"])
        assert row["ts"] == fake.now
        few = client.get_stock_bars(
            StockBarsRequest(symbol_or_symbols="SYN002", timeframe=TimeFrame.Minute, limit=5)
        )
        assert [b.open for b in few.data["SYN002"]] == visible.filter(
            visible["symbol"] == "SYN002"
        )["open"].head(5).to_list()


def test_other_timeframes_are_refused_422():
    with FakeAlpaca(tape(A=flat(3))) as fake:
        client = StockHistoricalDataClient(fake.key_id, fake.secret_key, url_override=fake.url)
        with pytest.raises(APIError) as err:
            client.get_stock_bars(
                StockBarsRequest(
                    symbol_or_symbols="A", timeframe=TimeFrame(5, TimeFrameUnit.Minute)
                )
            )
        assert err.value.status_code == 422
        assert err.value.message == "timeframe '5Min' is not served by the fake (its bars are 1Min)"


def test_latest_bar_is_the_bar_at_now():
    with FakeAlpaca(tape(A=[(100 + i, 101 + i, 99 + i, 100.5 + i) for i in range(4)])) as fake:
        client = StockHistoricalDataClient(fake.key_id, fake.secret_key, url_override=fake.url)
        fake.advance(2)
        latest = client.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols="A"))["A"]
        assert (latest.open, latest.close, int(latest.timestamp.timestamp() * 1e9)) == (
            102.0,
            102.5,
            fake.now,
        )


def test_bad_bars_and_bad_settings_are_backstop_errors_naming_the_cause():
    rows = [(100, 99, 101, 100)]  # high below low
    frame = pl.DataFrame(
        {"ts": [1_704_205_800_000_000_000], "symbol": ["A"]}
        | {k: [float(v)] for k, v in zip(("open", "high", "low", "close"), rows[0], strict=True)}
        | {"volume": [1.0]}
    )
    with pytest.raises(DataError) as bad_bars:
        FakeAlpaca(frame)
    assert str(bad_bars.value) == (
        "<fake alpaca bars>:1, symbol A: high 99.0 < low 101.0 (1 row with this problem)"
    )
    with pytest.raises(ConfigError) as bad_start:
        FakeAlpaca(tape(A=flat(2)), start=3)
    assert str(bad_start.value) == "start: must be within 1..2, the tape's timestamps (got 3)"
    fake = FakeAlpaca(tape(A=flat(2)))
    with pytest.raises(ConfigError) as bad_mode:
        fake.stream_outage(mode="loud")
    assert bad_mode.value.key == "mode"
