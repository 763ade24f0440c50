"""Exchange calendars: bars placed in real sessions (holidays, early closes, DST, futures)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from backstop.data.calendars import (
    CALENDARS,
    NS_PER_DAY,
    SessionArrays,
    _locate,
    bar_sessions,
    calendar_for,
    session_table,
)
from backstop.errors import ConfigError, DataError

NY = ZoneInfo("America/New_York")
CHI = ZoneInfo("America/Chicago")
UTC = ZoneInfo("UTC")


def ns(y: int, mo: int, d: int, h: int = 0, mi: int = 0, tz: ZoneInfo = UTC) -> int:
    """Wall-clock time in ``tz`` -> int64 ns UTC, computed with the stdlib only."""
    return int(datetime(y, mo, d, h, mi, tzinfo=tz).timestamp()) * 10**9


def day_of(y: int, mo: int, d: int) -> int:
    return (date(y, mo, d) - date(1970, 1, 1)).days


def one(ts: int, calendar: str = "XNYS") -> tuple[int, int, int, int]:
    s = bar_sessions(np.array([ts], dtype=np.int64), calendar)
    return int(s.session[0]), int(s.open_ns[0]), int(s.close_ns[0]), int(s.day[0])


def test_names_and_defaults() -> None:
    assert {"XNYS", "CMES", "ALWAYS"} <= set(CALENDARS)
    assert calendar_for(True) == "CMES"
    assert calendar_for(False) == "XNYS"


def test_regular_nyse_day_is_0930_to_1600_new_york() -> None:
    session, open_ns, close_ns, day = one(ns(2025, 12, 12, 11, 0, NY))
    assert session >= 0
    assert open_ns == ns(2025, 12, 12, 9, 30, NY) == ns(2025, 12, 12, 14, 30)
    assert close_ns == ns(2025, 12, 12, 16, 0, NY) == ns(2025, 12, 12, 21, 0)
    assert day == day_of(2025, 12, 12)


def test_bar_at_open_is_inside_and_bar_at_close_is_outside() -> None:
    at_open = one(ns(2025, 12, 12, 9, 30, NY))
    assert at_open[0] >= 0 and at_open[1] == ns(2025, 12, 12, 9, 30, NY)
    last_minute = one(ns(2025, 12, 12, 15, 59, NY))
    assert last_minute[0] >= 0
    session, open_ns, close_ns, day = one(ns(2025, 12, 12, 16, 0, NY))
    assert session == -1
    # outside: the next session is reported (Friday -> Monday 2025-12-15)
    assert open_ns == ns(2025, 12, 15, 9, 30, NY)
    assert close_ns == ns(2025, 12, 15, 16, 0, NY)
    assert day == day_of(2025, 12, 15)


@pytest.mark.parametrize(("mo", "d"), [(11, 28), (12, 24)])
def test_early_closes_at_1300_new_york(mo: int, d: int) -> None:
    session, open_ns, close_ns, day = one(ns(2025, mo, d, 12, 30, NY))
    assert session >= 0
    assert open_ns == ns(2025, mo, d, 9, 30, NY)
    assert close_ns == ns(2025, mo, d, 13, 0, NY)
    assert day == day_of(2025, mo, d)
    after = one(ns(2025, mo, d, 13, 0, NY))
    assert after[0] == -1
    table = session_table("XNYS", ns(2025, mo, d), ns(2025, mo, d) + NS_PER_DAY)
    assert table.height == 1
    assert table.row(0, named=True) == {
        "day": day_of(2025, mo, d),
        "open_ns": open_ns,
        "close_ns": close_ns,
        "early_close": True,
    }


def test_christmas_holiday_reports_next_session() -> None:
    session, open_ns, close_ns, day = one(ns(2025, 12, 25, 11, 0, NY))
    assert session == -1
    assert open_ns == ns(2025, 12, 26, 9, 30, NY)
    assert close_ns == ns(2025, 12, 26, 16, 0, NY)
    assert day == day_of(2025, 12, 26)


def test_dst_switch_moves_the_utc_open() -> None:
    # US DST began Sunday 2025-03-09: 09:30 New York is 14:30 UTC before, 13:30 UTC after
    s = bar_sessions(np.array([ns(2025, 3, 10, 15, 0), ns(2025, 3, 7, 15, 0)], np.int64), "XNYS")
    assert s.session.tolist() == [1, 0]  # consecutive sessions, numbered from the earliest
    assert s.open_ns.tolist() == [ns(2025, 3, 10, 13, 30), ns(2025, 3, 7, 14, 30)]
    assert s.close_ns.tolist() == [ns(2025, 3, 10, 20, 0), ns(2025, 3, 7, 21, 0)]
    assert s.day.tolist() == [day_of(2025, 3, 10), day_of(2025, 3, 7)]


def test_cme_equity_futures_session() -> None:
    ts = ns(2025, 12, 12, 8, 53, CHI)
    session, open_ns, close_ns, day = one(ts, "CMES")
    assert session >= 0
    assert day == day_of(2025, 12, 12)
    # exchange_calendars' CMES: 17:00 Chicago the previous day to 17:00 Chicago, no break
    assert open_ns == ns(2025, 12, 11, 17, 0, CHI)
    assert close_ns == ns(2025, 12, 12, 17, 0, CHI) == ns(2025, 12, 12, 23, 0)
    assert open_ns <= ts < close_ns
    # Thursday's session closes the instant this one opens: 16:59 is Thursday's, 17:00 is ours
    both = bar_sessions(np.array([open_ns - 60 * 10**9, open_ns], np.int64), "CMES")
    assert both.session.tolist() == [0, 1]
    assert int(both.close_ns[0]) == open_ns == int(both.open_ns[1])
    assert both.day.tolist() == [day_of(2025, 12, 11), day_of(2025, 12, 12)]
    # the weekend is outside; the Sunday 17:00 Chicago open starts Monday's session
    sat = one(ns(2025, 12, 13, 12, 0, CHI), "CMES")
    assert sat[0] == -1 and sat[1] == ns(2025, 12, 14, 17, 0, CHI)
    assert sat[3] == day_of(2025, 12, 15)


def test_cme_early_close_and_holiday() -> None:
    # Christmas Eve: early close 12:00 Chicago; Christmas closed; reopens 17:00 on the 25th
    eve = one(ns(2025, 12, 24, 11, 0, CHI), "CMES")
    assert eve[0] >= 0 and eve[2] == ns(2025, 12, 24, 12, 0, CHI)
    xmas = one(ns(2025, 12, 25, 10, 0, CHI), "CMES")
    assert xmas[0] == -1
    assert xmas[1] == ns(2025, 12, 25, 17, 0, CHI) and xmas[3] == day_of(2025, 12, 26)


def test_always_is_24_7_with_utc_day_sessions() -> None:
    ts = np.array(
        [ns(2025, 12, 25, 3, 0), ns(2025, 12, 27, 23, 59), ns(2025, 12, 25, 0, 0)], np.int64
    )
    s = bar_sessions(ts, "ALWAYS")
    assert s.session.tolist() == [0, 2, 0]
    assert s.open_ns.tolist() == [ns(2025, 12, 25), ns(2025, 12, 27), ns(2025, 12, 25)]
    assert s.close_ns.tolist() == [ns(2025, 12, 26), ns(2025, 12, 28), ns(2025, 12, 26)]
    assert s.day.tolist() == [day_of(2025, 12, 25), day_of(2025, 12, 27), day_of(2025, 12, 25)]
    table = session_table("ALWAYS", ns(2025, 12, 25, 12), ns(2025, 12, 27, 1))
    assert table["day"].to_list() == [day_of(2025, 12, d) for d in (25, 26, 27)]
    assert not table["early_close"].any()


def test_unknown_calendar_is_a_config_error_naming_calendar() -> None:
    with pytest.raises(ConfigError, match="calendar") as info:
        bar_sessions(np.array([ns(2025, 1, 2)], np.int64), "LSE")
    assert info.value.key == "calendar"
    assert "XNYS" in str(info.value)
    with pytest.raises(ConfigError, match="calendar"):
        session_table("nyse", 0, 1)


def test_timestamps_out_of_coverage_are_a_data_error() -> None:
    with pytest.raises(DataError, match="outside the years"):
        bar_sessions(np.array([ns(2025, 1, 2), 2**63 - 1], np.int64), "XNYS")
    with pytest.raises(DataError, match="outside the years"):
        bar_sessions(np.array([ns(1850, 1, 2)], np.int64), "CMES")
    with pytest.raises(DataError, match="int64"):
        bar_sessions(np.array([1.5]), "XNYS")


def test_unsorted_input_matches_sorted_input() -> None:
    rng = np.random.default_rng(7)
    lo, hi = ns(2024, 11, 1), ns(2026, 2, 1)
    ts = rng.integers(lo, hi, size=20_000, dtype=np.int64)
    for cal in CALENDARS:
        got = bar_sessions(ts, cal)
        order = np.argsort(ts, kind="stable")
        ref = bar_sessions(ts[order], cal)
        for name in ("open_ns", "close_ns", "day", "session"):
            assert np.array_equal(getattr(got, name)[order], getattr(ref, name)), (cal, name)
        inside = got.session >= 0
        assert np.all((got.open_ns <= ts) == inside)
        assert np.all(ts[inside] < got.close_ns[inside])
        assert np.all(ts[~inside] < got.open_ns[~inside])


def test_session_numbers_follow_the_session_table() -> None:
    lo, hi = ns(2025, 11, 24), ns(2025, 12, 31)
    ts = np.arange(lo, hi, 15 * 60 * 10**9, dtype=np.int64)[::-1]
    s = bar_sessions(ts, "XNYS")
    table = session_table("XNYS", lo, hi)
    inside = s.session >= 0
    assert sorted(set(s.session[inside].tolist())) == list(range(table.height))
    assert np.array_equal(table["open_ns"].to_numpy()[s.session[inside]], s.open_ns[inside])
    assert table.schema == pl.Schema(
        {"day": pl.Int32, "open_ns": pl.Int64, "close_ns": pl.Int64, "early_close": pl.Boolean}
    )
    assert set(table.filter("early_close")["day"].to_list()) == {
        day_of(2025, 11, 28),
        day_of(2025, 12, 24),
    }
    assert day_of(2025, 12, 25) not in table["day"].to_list()


def test_empty_input() -> None:
    for cal in CALENDARS:
        s = bar_sessions(np.array([], dtype=np.int64), cal)
        assert isinstance(s, SessionArrays)
        assert [len(a) for a in (s.session, s.open_ns, s.close_ns, s.day)] == [0, 0, 0, 0]
        assert (s.session.dtype, s.open_ns.dtype, s.close_ns.dtype, s.day.dtype) == (
            np.int32,
            np.int64,
            np.int64,
            np.int32,
        )
    assert session_table("XNYS", 5, 5).height == 0


def test_break_inside_a_session_counts_as_outside() -> None:
    # no supported calendar has a break, so the generic rule is checked on a hand-made schedule
    opens = np.array([100, 300], np.int64)
    closes = np.array([200, 400], np.int64)
    bs = np.array([140, -1], np.int64)
    be = np.array([160, -1], np.int64)
    ts = np.array([100, 139, 140, 159, 160, 199, 200, 350, 400], np.int64)
    k, inside = _locate(ts, opens, closes, bs, be)
    assert k.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 2]
    assert inside.tolist() == [True, True, False, False, True, True, False, True, False]
