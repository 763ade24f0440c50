"""The live status line: the exact text for positions, flat, many positions and no event,
and the rich version's colours."""

from __future__ import annotations

import pytest

from backstop.errors import ConfigError
from backstop.runners.live.status import (
    PositionView,
    StatusSnapshot,
    status_line,
    status_text,
)

S = 1_000_000_000
TS = 1_780_670_465 * S + 120_000_000  # 2026-06-05 14:41:05.120 UTC


def _snap(**kw) -> StatusSnapshot:
    base = {
        "ts": TS,
        "state": "ACTIVE",
        "positions": (
            PositionView("MSFT", -50, 410.5, 409.0),
            PositionView("AAPL", 100, 187.2, 188.0),
        ),
        "working_orders": 2,
        "realized_pnl": 120.0,
        "unrealized_pnl": 155.0,
        "last_event_ts": TS - 3 * S,
    }
    base.update(kw)
    return StatusSnapshot(**base)


def test_status_line_lists_positions_by_symbol_with_their_open_pnl() -> None:
    assert status_line(_snap()) == (
        "2026-06-05 14:41:05Z ACTIVE | AAPL +100 @ 187.20 mark 188.00 (+80.00) | "
        "MSFT -50 @ 410.50 mark 409.00 (+75.00) | 2 working | realized +120.00 "
        "unrealized +155.00 | last event 14:41:02Z (3 s ago)"
    )


def test_status_line_when_flat_and_before_any_event() -> None:
    snap = _snap(
        state="HALTED", positions=(), working_orders=0, unrealized_pnl=-0.0, last_event_ts=None
    )
    assert status_line(snap) == (
        "2026-06-05 14:41:05Z HALTED | flat | 0 working | realized +120.00 unrealized +0.00 "
        "| no event yet"
    )


def test_status_line_shows_four_positions_then_a_count() -> None:
    held = tuple(PositionView(sym, 1, 10.0, 9.5, multiplier=5) for sym in "EDCBA")
    line = status_line(_snap(positions=held, last_event_ts=TS - 3 * 3600 * S))
    assert line == (
        "2026-06-05 14:41:05Z ACTIVE | A +1 @ 10.00 mark 9.50 (-2.50) | "
        "B +1 @ 10.00 mark 9.50 (-2.50) | C +1 @ 10.00 mark 9.50 (-2.50) | "
        "D +1 @ 10.00 mark 9.50 (-2.50) | +1 more | 2 working | realized +120.00 "
        "unrealized +155.00 | last event 11:41:05Z (3 h ago)"
    )


def test_fractional_quantities_and_minutes_ago() -> None:
    snap = _snap(
        positions=(PositionView("BTCUSD", 0.125, 60000, 60400),), last_event_ts=TS - 300 * S
    )
    assert status_line(snap) == (
        "2026-06-05 14:41:05Z ACTIVE | BTCUSD +0.125 @ 60,000.00 mark 60,400.00 (+50.00) | "
        "2 working | realized +120.00 unrealized +155.00 | last event 14:36:05Z (5 min ago)"
    )


def test_rich_text_is_the_same_line_with_state_and_pnl_coloured() -> None:
    snap = _snap(state="REDUCING", realized_pnl=-40.0)
    text = status_text(snap)
    assert text.plain == status_line(snap)
    styled = [(text.plain[s.start : s.end], str(s.style)) for s in text.spans]
    assert styled == [
        ("REDUCING", "bold yellow"),
        ("(+80.00)", "green"),
        ("(+75.00)", "green"),
        ("-40.00", "red"),
        ("+155.00", "green"),
    ]


@pytest.mark.parametrize(
    ("build", "key"),
    [
        (lambda: PositionView("AAPL", float("nan"), 1.0, 1.0), "status.qty"),
        (lambda: PositionView("AAPL", 1, 1.0, float("inf")), "status.mark"),
        (lambda: _snap(working_orders=-1), "status.working_orders"),
        (lambda: _snap(realized_pnl=float("nan")), "status.realized_pnl"),
    ],
)
def test_bad_snapshot_values_are_refused_naming_the_field(build, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        build()
    assert err.value.key == key
