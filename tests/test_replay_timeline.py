"""The incident model (events, merge, order trails, positions) and its value and time rules."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import zoneinfo

import pytest

from backstop.errors import ConfigError
from backstop.replay import (
    EVENT_TYPES,
    KINDS,
    Advisory,
    BotPosition,
    BrokerFill,
    BrokerOrder,
    BrokerPosition,
    Incident,
    OrderIntent,
    Signal,
    merge,
)
from backstop.replay.times import LocalZone, TimeReader, format_ns, parse_iso_ns
from backstop.replay.values import to_confidence, to_float, to_side

T0 = 1_765_551_181_123_000_000


def test_events_are_frozen_slotted_and_kinds_are_unique() -> None:
    signal = Signal(ts=T0, source="a:1", symbol="ESZ5", side=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        signal.side = -1  # type: ignore[misc]
    assert not hasattr(signal, "__dict__")
    assert len(KINDS) == len(EVENT_TYPES) == 10
    assert Signal.kind == "signal" and BrokerFill.kind == "broker_fill"


def timeline(name: str, *events: object, **kw: object) -> Incident:
    return Incident(name=name, tz="UTC", events=tuple(events), **kw)  # type: ignore[arg-type]


def test_merge_orders_by_ts_then_timeline_then_position() -> None:
    a1 = Signal(ts=T0 + 5, source="a:1", symbol="X", side=1)
    a2 = Advisory(ts=T0 + 9, source="a:2", symbol="X", verdict="WAIT")
    b1 = BotPosition(ts=T0 + 5, source="b:1", symbol="X", qty=-1)
    b2 = BrokerPosition(ts=T0, source="b:2", symbol="X", qty=0)
    merged = merge(timeline("a", a1, a2), timeline("b", b2, b1), name="m")
    assert merged.events == (b2, a1, b1, a2)
    assert merged.name == "m" and merged.tz == "UTC"
    again = merge(timeline("a", a1, a2), timeline("b", b2, b1))
    assert again.name == "a" and again.events == merged.events  # deterministic


def test_merge_refuses_two_specs_for_one_symbol() -> None:
    left = timeline("a", instruments={"ESZ5": {"tick": 0.25, "multiplier": 50.0}})
    right = timeline("b", instruments={"ESZ5": {"tick": 0.5, "multiplier": 50.0}})
    with pytest.raises(ConfigError, match=r"instruments\.ESZ5: two specs"):
        merge(left, right)
    assert merge(left, left).instruments == {"ESZ5": {"tick": 0.25, "multiplier": 50.0}}


def test_orders_groups_by_id_and_positions_answer_as_of_a_time() -> None:
    events = (
        BotPosition(ts=T0, source="s:1", symbol="X", qty=-1),
        BrokerPosition(ts=T0, source="s:1", symbol="X", qty=0),
        OrderIntent(ts=T0 + 1, source="l:2", symbol="X", side=1, path="exit", qty=1, order_id="7"),
        OrderIntent(ts=T0 + 1, source="l:3", symbol="X", side=1, path="entry"),  # no id
        BrokerOrder(ts=T0 + 2, source="b:1", order_id="7", symbol="X", side=1, qty=1),
        BrokerOrder(ts=T0 + 2, source="b:2", order_id="8", symbol="X", side=-1, parent_id="7"),
        BrokerFill(ts=T0 + 3, source="b:3", symbol="X", side=1, qty=1, price=10, order_id="7"),
        BotPosition(ts=T0 + 4, source="l:4", symbol="X", qty=1),
    )
    inc = timeline("t", *events)
    trails = inc.orders()
    assert list(trails) == ["7", "8"]
    assert trails["7"].legs == ("8",) and trails["8"].parent_id == "7"
    assert len(trails["7"].intents) == 1 and trails["7"].filled_qty == 1
    assert inc.bot_position("X", T0) == -1 and inc.bot_position("X") == 1
    assert inc.bot_position("X", T0 - 1) is None
    assert inc.broker_position("X", T0 + 9) == 0 and inc.broker_position("Y") is None
    assert inc.of("order_intent") == inc.of(OrderIntent) == (events[2], events[3])
    assert inc.symbols == ("X",)
    assert inc.counts()["bot_position"] == 2


@pytest.mark.parametrize(
    ("text", "side"),
    [("BUY", 1), ("buy", 1), ("LONG", 1), ("1", 1), ("+1", 1), ("SELL", -1), ("short", -1)],
)
def test_sides(text: str, side: int) -> None:
    assert to_side(text) == side


def test_values() -> None:
    assert to_side(-1) == -1
    assert to_confidence("50%") == 0.5 and to_confidence("0.36") == 0.36
    assert to_float("1,234.50") == 1234.5
    for bad in ("1,2", "1.2.3", "inf", "nan", "", True):
        with pytest.raises(ValueError):
            to_float(bad)
    with pytest.raises(ValueError, match=r"confidence must lie in 0\.\.1"):
        to_confidence("50")
    with pytest.raises(ValueError, match="not a side"):
        to_side(2)


def test_iso_times_to_the_nanosecond_and_back() -> None:
    ns = parse_iso_ns("2026-06-05T18:47:12.460218337Z")
    assert ns == 1_780_685_232_460_218_337
    assert parse_iso_ns("2026-06-05T14:47:12.460218337-04:00") == ns
    assert format_ns(ns) == "2026-06-05T18:47:12.460218337Z"
    chicago = LocalZone("America/Chicago")
    assert format_ns(T0, chicago) == "2025-12-12T08:53:01.123-06:00"
    assert parse_iso_ns(format_ns(T0, chicago)) == T0
    assert parse_iso_ns("2025-12-12 08:53:01.123", chicago) == T0
    with pytest.raises(ValueError, match="has no UTC offset"):
        parse_iso_ns("2025-12-12 08:53:01")


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("America/Chicago", "2025-03-09"),  # 02:00 -> 03:00, the 02 hour does not exist
        ("America/Chicago", "2025-11-02"),  # 02:00 -> 01:00, the 01 hour happens twice
        ("Australia/Lord_Howe", "2025-04-06"),  # a half-hour change: 02:00 -> 01:30
        ("Asia/Kolkata", "2025-06-01"),  # no change, a +05:30 offset
    ],
)
def test_zone_offsets_match_zoneinfo_minute_by_minute(zone: str, day: str) -> None:
    """The per-hour offset cache gives, for every minute of a DST day, what zoneinfo gives."""
    local = LocalZone(zone)
    tz = zoneinfo.ZoneInfo(zone)
    start = dt.datetime.fromisoformat(day)
    epoch = dt.datetime(1970, 1, 1)
    for minute in range(-60, 25 * 60):
        wall = start + dt.timedelta(minutes=minute)
        expected = tuple(
            int(wall.replace(tzinfo=tz, fold=fold).utcoffset().total_seconds()) for fold in (0, 1)
        )
        got = local.offsets(int((wall - epoch).total_seconds()))
        assert got == expected, (zone, wall)


def test_time_regex_with_12_hour_clock() -> None:
    pattern = re.compile(
        r"(?P<month>\d{2})/(?P<day>\d{2})/(?P<year>\d{4}) (?P<hour12>\d{1,2}):(?P<minute>\d{2})"
        r":(?P<second>\d{2}) (?P<ampm>[AP]M)"
    )
    reader = TimeReader(pattern, LocalZone("America/Chicago"))
    assert reader.read("12/12/2025 8:53:01 AM") == T0 - 123_000_000
    assert reader.read("12/12/2025 12:00:00 AM") == 1_765_519_200_000_000_000  # midnight CST
    with pytest.raises(ValueError, match="does not match"):
        reader.read("yesterday")
