"""Historical bars from the fake IBKR gateway: the tape up to the fake's clock, never later."""

from __future__ import annotations

import datetime as dt

from fake_ibkr_kit import DEC_2025, connect, es_tape, sync
from ib_async import Future as IbFuture

from backstop.testing.fake_ibkr import FakeIBKR

ROWS = [(6000.0 + k, 6002.0 + k, 5999.0 + k, 6001.0 + k) for k in range(10)]


def _bars(ib, size="1 min", end="", duration="1 D"):
    [c] = ib.qualifyContracts(IbFuture("ES", "202512", "CME"))
    return ib.reqHistoricalData(c, end, duration, size, "TRADES", False, formatDate=2)


def _ohlc(bars):
    return [(b.open, b.high, b.low, b.close) for b in bars]


def test_minute_bars_equal_the_tape_up_to_now_and_grow_as_it_advances():
    with FakeIBKR(es_tape(ROWS), start=4) as fake, connect(fake) as ib:
        bars = _bars(ib)
        assert _ohlc(bars) == ROWS[:4]
        assert [b.date for b in bars] == [
            dt.datetime.fromtimestamp((DEC_2025 + k * 60_000_000_000) / 1e9, tz=dt.UTC)
            for k in range(4)
        ]
        fake.advance(2)
        sync(ib)
        assert _ohlc(_bars(ib)) == ROWS[:6]


def test_an_end_after_now_is_cut_at_now():
    with FakeIBKR(es_tape(ROWS), start=3) as fake, connect(fake) as ib:
        later = dt.datetime(2025, 12, 2, tzinfo=dt.UTC)
        assert _ohlc(_bars(ib, end=later)) == ROWS[:3]
        assert _ohlc(_bars(ib, duration="120 S")) == ROWS[1:3]


def test_daily_bars_sum_the_day_so_far():
    with FakeIBKR(es_tape(ROWS), start=5) as fake, connect(fake) as ib:
        [day] = _bars(ib, size="1 day", duration="2 D")
        assert day.date == dt.date(2025, 12, 1)
        assert (day.open, day.high, day.low, day.close) == (6000.0, 6006.0, 5999.0, 6005.0)
        assert day.volume == 5 * 1_000_000.0


def test_a_bar_size_the_tape_does_not_have_is_refused_with_error_162():
    with FakeIBKR(es_tape(ROWS), start=5) as fake, connect(fake) as ib:
        seen = []
        ib.errorEvent += lambda req_id, code, text, contract: seen.append((code, text))
        assert list(_bars(ib, size="1 hour")) == []
        [(code, text)] = seen
        assert code == 162
        assert "bar size '1 hour' is not served (this tape serves ['1 min', '1 day'])" in text


def test_a_keep_up_to_date_subscription_gets_each_new_bar_until_cancelled():
    with FakeIBKR(es_tape(ROWS), start=3) as fake, connect(fake) as ib:
        [c] = ib.qualifyContracts(IbFuture("ES", "202512", "CME"))
        bars = ib.reqHistoricalData(c, "", "1 D", "1 min", "TRADES", False, 2, keepUpToDate=True)
        assert _ohlc(bars) == ROWS[:3]
        fake.advance(2)
        sync(ib)
        assert _ohlc(bars) == ROWS[:5]
        ib.cancelHistoricalData(bars)
        sync(ib)
        fake.advance()
        sync(ib)
        assert _ohlc(bars) == ROWS[:5]


def test_a_daily_subscription_updates_todays_bar_in_place():
    with FakeIBKR(es_tape(ROWS), start=3) as fake, connect(fake) as ib:
        [c] = ib.qualifyContracts(IbFuture("ES", "202512", "CME"))
        bars = ib.reqHistoricalData(c, "", "2 D", "1 day", "TRADES", False, 2, keepUpToDate=True)
        assert _ohlc(bars) == [(6000.0, 6004.0, 5999.0, 6003.0)]
        fake.advance(3)
        sync(ib)
        assert _ohlc(bars) == [(6000.0, 6007.0, 5999.0, 6006.0)]
