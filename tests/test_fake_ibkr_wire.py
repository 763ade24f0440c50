"""The fake IBKR gateway's framing, contract specs and account ledger, without sockets."""

from __future__ import annotations

import datetime as dt
import struct

import pytest
from fake_ibkr_kit import es_tape, flat

from backstop.errors import ConfigError
from backstop.testing.fake_ibkr import FakeIBKR
from backstop.testing.fake_ibkr.account import Ledger
from backstop.testing.fake_ibkr.contracts import front_month, make_spec, matches, third_friday
from backstop.testing.fake_ibkr.wire import (
    MAX_MESSAGE,
    WireError,
    frame,
    split,
    take_greeting,
    take_message,
    text,
)


def test_frame_is_a_big_endian_length_then_nul_terminated_text_fields():
    data = frame([9, 1, True, False, None, 6000.0, "ES"])
    body = b"9\x001\x001\x000\x00\x006000.0\x00ES\x00"
    assert data == struct.pack(">I", len(body)) + body
    assert split(body) == ["9", "1", "1", "0", "", "6000.0", "ES"]
    assert text(float("nan")) == ""


def test_take_message_waits_for_a_whole_message_and_leaves_the_rest():
    buf = bytearray(frame([49, 1]) + frame([8, 1, 5])[:6])
    assert take_message(buf) == b"49\x001\x00"
    assert take_message(buf) is None  # the second one is still partial
    assert len(buf) == 6


def test_the_greeting_gives_the_client_version_range():
    buf = bytearray(b"API\0" + struct.pack(">I", 9) + b"v157..178" + b"rest")
    assert take_greeting(buf) == (157, 178)
    assert bytes(buf) == b"rest"
    assert take_greeting(bytearray(b"API\0" + struct.pack(">I", 9) + b"v157")) is None


@pytest.mark.parametrize(
    ("reader", "data", "words"),
    [
        (take_greeting, b"GET / HTTP/1.1\r\n", "expected the API.0 greeting"),
        (take_greeting, b"API\0" + struct.pack(">I", 5) + b"hello", "expected a version range"),
        (take_message, struct.pack(">I", MAX_MESSAGE + 1), "over the fake's limit"),
    ],
)
def test_broken_framing_is_a_wire_error_naming_it(reader, data, words):
    with pytest.raises(WireError, match=words):
        reader(bytearray(data))


def test_future_specs_follow_the_registry_and_the_quarterly_calendar():
    assert third_friday(2025, 12) == dt.date(2025, 12, 19)
    assert front_month(dt.date(2025, 12, 1)) == (2025, 12)
    assert front_month(dt.date(2025, 12, 19)) == (2026, 3)
    spec = make_spec("MNQH6", dt.date(2025, 12, 1), None)
    assert (spec.symbol, spec.expiry, spec.local_symbol, spec.min_tick, spec.multiplier_text) == (
        "MNQ",
        "20260320",
        "MNQH6",
        0.25,
        "2",
    )
    es = make_spec("ES", dt.date(2025, 12, 1), None)
    assert matches(es, {"symbol": "ES", "secType": "FUT", "exchange": "CME"})
    assert not matches(es, {"symbol": "ES", "secType": "FUT", "exchange": "GLOBEX"})
    assert matches(es, {"lastTradeDateOrContractMonth": "20251219", "symbol": "ES"})
    assert not matches(es, {"symbol": "ES", "lastTradeDateOrContractMonth": "202603"})


def test_ledger_books_futures_pnl_with_the_multiplier_and_flips_through_zero():
    book = Ledger(100_000.0)
    assert book.apply("ES", 2, 6000.0, 50.0, True, 4.0) is None  # opening: commission only
    assert book.cash == 99_996.0
    assert book.apply("ES", -3, 6010.0, 50.0, True, 6.0) == 2 * 10 * 50 - 6.0
    h = book.holdings["ES"]
    assert (h.qty, h.avg) == (-1.0, 6010.0)  # the rest opened short at the fill
    assert book.cash == 99_996.0 + 994.0
    values = book.values(lambda s: 6000.0, lambda s: 50.0, {"ES"})
    assert values["UnrealizedPnL"] == 500.0
    assert values["NetLiquidation"] == 99_996.0 + 994.0 + 500.0
    assert values["GrossPositionValue"] == 300_000.0
    assert values["AvailableFunds"] == values["NetLiquidation"] - 30_000.0


def test_ledger_moves_cash_by_notional_for_stocks():
    book = Ledger(10_000.0)
    book.apply("SYN", 10, 100.0, 1.0, False, 1.0)
    assert book.cash == 10_000.0 - 1000.0 - 1.0
    assert book.values(lambda s: 101.0, lambda s: 1.0, set())["NetLiquidation"] == 8_999.0 + 1010.0


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"positions": {"NQ": (1, 20000.0)}}, "positions['NQ']"),
        ({"first_order_id": 0}, "first_order_id"),
        ({"account": ""}, "account"),
        ({"start": 9}, "start"),
    ],
)
def test_bad_settings_are_config_errors_naming_the_key(kwargs, key):
    bars = es_tape(flat(3, 6000.0))
    with pytest.raises(ConfigError) as caught:
        FakeIBKR(bars, **kwargs)
    assert caught.value.key == key
