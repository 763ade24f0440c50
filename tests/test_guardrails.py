"""The guardrail pipeline, one rule at a time, each at its boundary: just passes, just fails.

Every test runs the real compiled pipeline (``run_backtest``) on a few kit bars. Entries
decided at bar 0's close price at 100 and fill at bar 1's open (100 on FLAT bars). Profile
keys are set by their dotted names (``risk={...}``), exactly as a TOML profile sets them.
"""

from __future__ import annotations

import polars as pl
import pytest
from kit import advisory, bars, combine, control, entry, exit_, run, ts_of

from backstop.domain.enums import ControlAction, ReasonCode
from backstop.domain.instruments import Instrument

FLAT = (100.0, 101.0, 99.0, 100.0)
FIVE = [FLAT] * 5
ES = {"T": Instrument("T", tick_size=0.25, multiplier=50.0, is_future=True)}
PROTECTED = {"stop_px": 98.0, "target_px": 104.0}


def verdict(result, k: int = 0) -> dict:
    return result.verdicts.row(k, named=True)


def codes(result, k: int = 0) -> tuple[bool, list[str]]:
    v = verdict(result, k)
    return v["approved"], v["reason_codes"]


def passes(result, k: int = 0, *also: str) -> None:
    assert codes(result, k) == (True, sorted(also, key=lambda n: ReasonCode[n]))


def fails(result, code: str, k: int = 0) -> None:
    approved, names = codes(result, k)
    assert not approved and code in names, names
    assert verdict(result, k)["qty"] == 0.0 and verdict(result, k)["order_id"] == -1


def at_boundary(result, code: str, ok: bool, k: int = 0) -> None:
    """Just inside the limit the signal passes clean; just outside it fails with ``code``."""
    if ok:
        passes(result, k)
    else:
        fails(result, code, k)


def go(rows, risk=None, frame=None, **kw):
    return run(frame if frame is not None else bars(FIVE), rows, risk=risk or {}, **kw)


# ---- advisory gate -------------------------------------------------------------------------
def test_wait_advisory_blocks_the_signal_it_advises() -> None:
    fails(go([advisory(0), entry(0)]), "ADVISORY_WAIT")
    passes(go([entry(0)]))


def test_wait_attached_to_the_signal_itself_blocks_it() -> None:
    fails(go([entry(0, advisory=2, advisory_confidence=0.5)]), "ADVISORY_WAIT")
    passes(go([entry(0, advisory=1, advisory_confidence=0.9)]))


def test_go_advisory_lets_the_signal_through() -> None:
    passes(go([advisory(0, advice=1), entry(0)]))


def test_advisory_applies_within_its_ttl_only() -> None:
    risk = {"advisory.ttl_seconds": 120.0}
    fails(go([advisory(0), entry(2)], risk), "ADVISORY_WAIT")  # 120 s later: still fresh
    passes(go([advisory(0), entry(3)], risk))  # 180 s later: stale


def test_conviction_overrides_wait_when_the_profile_allows_and_says_so() -> None:
    risk = {"advisory.override_min_conviction": 90.0}
    r = go([advisory(0), entry(0, conviction=90.0)], risk)
    passes(r, 0, "ADVISORY_OVERRIDDEN")
    assert verdict(r)["advisory"] == "WAIT" and verdict(r)["advisory_confidence"] == 0.5
    fails(go([advisory(0), entry(0, conviction=89.9)], risk), "ADVISORY_WAIT")


def test_wait_blocks_exits_unless_the_profile_lets_exits_through() -> None:
    rows = [entry(0), advisory(2), exit_(2)]
    fails(go(rows), "ADVISORY_WAIT", k=1)
    passes(go(rows, {"advisory.wait_blocks_exits": False}), 1)


def test_wait_can_be_made_advisory_only() -> None:
    passes(go([advisory(0), entry(0)], {"advisory.block_on_wait": False}))


# ---- entry guard ---------------------------------------------------------------------------
def test_stop_distance_in_ticks_boundary() -> None:
    risk = {"entry.max_stop_ticks": 12.0}
    passes(go([entry(0, qty=1, stop_px=97.0, target_px=104.0)], risk, instruments=ES))
    fails(
        go([entry(0, qty=1, stop_px=96.75, target_px=104.0)], risk, instruments=ES),
        "STOP_TOO_WIDE",
    )


def test_max_loss_per_trade_includes_the_multiplier() -> None:
    risk = {"entry.max_loss_per_trade": 150.0}
    r = go([entry(0, qty=1, stop_px=97.0, target_px=104.0)], risk, instruments=ES)
    passes(r)
    assert verdict(r)["risk"] == pytest.approx(150.0)
    fails(
        go([entry(0, qty=1, stop_px=96.75, target_px=104.0)], risk, instruments=ES),
        "MAX_LOSS_CAP",
    )


def test_target_from_r_multiple_fills_a_missing_target() -> None:
    r = go([entry(0, stop_px=98.0)], {"entry.target_r": 2.0, "entry.require_protection": True})
    passes(r, 0, "TARGET_FROM_R")
    assert verdict(r)["target_price"] == 104.0
    tp = r.orders.filter(r.orders["role"] == "TAKE_PROFIT")
    assert tp["limit_price"].to_list() == [104.0]


# ---- sizer ---------------------------------------------------------------------------------
def test_risk_sizing_divides_the_risk_amount_by_the_stop_distance() -> None:
    r = go([entry(0, qty=None, stop_px=98.0, target_px=104.0)], {"sizer.kind": "risk"})
    assert verdict(r)["qty"] == 500.0  # 1% of 100,000 / 2.00


@pytest.mark.parametrize(("conviction", "qty"), [(75.0, 500.0), (74.9, 250.0), (50.0, 250.0)])
def test_conviction_tiers_scale_the_size(conviction: float, qty: float) -> None:
    risk = {"sizer.kind": "risk", "sizer.conviction_full": 75.0, "sizer.conviction_half": 50.0}
    r = go([entry(0, qty=None, conviction=conviction, **PROTECTED)], risk)
    assert verdict(r)["qty"] == qty


def test_conviction_below_the_lowest_tier_is_refused() -> None:
    risk = {"sizer.kind": "risk", "sizer.conviction_full": 75.0, "sizer.conviction_half": 50.0}
    fails(go([entry(0, qty=None, conviction=49.9, **PROTECTED)], risk), "LOW_CONVICTION")


def test_target_dollars_of_the_signal_set_the_notional() -> None:
    r = go([entry(0, qty=None, target_dollars=5_000.0)])
    assert verdict(r)["qty"] == 50.0


def test_target_dollars_without_any_price_is_sizing_no_price() -> None:
    r = go([entry(0, qty=None, target_dollars=5_000.0, symbol="NOBARS")])
    assert "SIZING_NO_PRICE" in codes(r)[1] or "UNKNOWN_SYMBOL" in codes(r)[1]


def test_size_cap_clamps_and_says_so() -> None:
    r = go([entry(0, qty=None)], {"sizer.max_qty": 40.0})
    passes(r, 0, "SIZE_CAPPED")
    assert verdict(r)["qty"] == 40.0


# ---- risk gate: state ----------------------------------------------------------------------
def test_manual_kill_blocks_everything_until_a_manual_reset() -> None:
    rows = [control(1, ControlAction.KILL), entry(1), control(2, ControlAction.RESET), entry(3)]
    r = go(rows)
    fails(r, "KILL_SWITCH_ACTIVE", 0)
    passes(r, 1)
    kinds = r.guard_events["kind"].to_list()
    assert "KILL_ACTIVATED" in kinds and "MANUAL_RESET" in kinds


def test_kill_switch_cancels_working_entries_and_flattens() -> None:
    rows = [entry(0, **PROTECTED), entry(1, symbol="U", otype=1, limit_px=90.0)]
    rows.append(control(2, ControlAction.KILL))
    frame = combine(bars(FIVE), bars(FIVE, symbol="U"))
    r = go(rows, frame=frame)
    flat = r.verdicts.filter(r.verdicts["source"] == "engine")
    assert flat["reason_codes"].to_list() == [["KILL_SWITCH_FLATTEN"]]
    assert flat["qty"].to_list() == [100.0] and flat["side"].to_list() == ["SELL"]
    limit = r.orders.filter((r.orders["symbol"] == "U") & (r.orders["role"] == "ENTRY"))
    assert limit["status"].to_list() == ["CANCELED"]
    assert "KILL_SWITCH_ACTIVE" in limit["reason_codes"][0]
    assert r.trades["exit_reason"].to_list() == ["kill_switch"]
    kill = r.guard_events.filter(r.guard_events["kind"] == "KILL_ACTIVATED")
    assert kill["kill_cause"].to_list() == ["MANUAL"]


def test_reducing_state_allows_exits_only() -> None:
    r = go([entry(0), control(1, ControlAction.SET_REDUCING), entry(2, symbol="T"), exit_(2)])
    passes(r, 1)  # exits are decided before entries at one bar
    fails(r, "STATE_REDUCING", 2)


def test_a_halted_strategy_is_refused() -> None:
    r = go([control(0, ControlAction.HALT_STRATEGY), entry(0)])
    fails(r, "STRATEGY_HALTED")


# ---- risk gate: account and strategy limits ------------------------------------------------
DOWN = [FLAT, FLAT, (100.0, 100.0, 95.0, 95.0), (95.0, 95.0, 95.0, 95.0), FLAT]


@pytest.mark.parametrize(("limit", "ok"), [(500.0, False), (500.01, True)])
def test_daily_loss_limit_in_dollars(limit: float, ok: bool) -> None:
    r = go([entry(0), entry(2, symbol="T", qty=1)], {"risk.daily_loss_dollars": limit},
           frame=bars(DOWN))  # fmt: skip
    # the second entry is also a duplicate; the daily-loss code decides the boundary
    assert ("DAILY_LOSS_LIMIT" not in codes(r, 1)[1]) is ok


@pytest.mark.parametrize(("limit", "ok"), [(0.005, False), (0.0051, True)])
def test_daily_loss_limit_as_a_fraction_of_day_start_equity(limit: float, ok: bool) -> None:
    r = go([entry(0), entry(2, symbol="T", qty=1)], {"risk.daily_loss_pct": limit},
           frame=bars(DOWN))  # fmt: skip
    assert ("DAILY_LOSS_LIMIT" not in codes(r, 1)[1]) is ok


TWO = combine(bars(FIVE), bars(FIVE, symbol="U"), bars(FIVE, symbol="V"))


def test_max_trades_per_day_per_strategy_stops_the_third() -> None:
    rows = [entry(0), entry(0, symbol="U"), entry(0, symbol="V")]
    r = go(rows, {"risk.max_trades_per_day": 2}, frame=TWO)
    passes(r, 0)
    passes(r, 1)
    fails(r, "MAX_TRADES_PER_DAY", 2)


def test_max_trades_per_day_of_the_account_counts_every_strategy() -> None:
    rows = [entry(0), entry(0, symbol="U", strategy_id="b"), entry(0, symbol="V", strategy_id="c")]
    r = go(rows, {"risk.max_trades_per_day_account": 2}, frame=TWO)
    fails(r, "MAX_TRADES_PER_DAY_ACCOUNT", 2)


def test_trade_count_resets_on_the_next_session_day() -> None:
    day2 = ts_of(0) + 86_400_000_000_000
    frame = combine(
        bars(FIVE, ts=[ts_of(i) for i in range(5)]),
        bars(FIVE, symbol="U", ts=[day2 + ts_of(i) - ts_of(0) for i in range(5)]),
    )
    rows = [entry(0), entry(day2, symbol="U")]
    r = go(rows, {"risk.max_trades_per_day": 1}, frame=frame)
    passes(r, 1)


@pytest.mark.parametrize(("cap", "ok"), [(10_000.0, True), (9_999.99, False)])
def test_daily_allocation_cap(cap: float, ok: bool) -> None:
    r = go([entry(0)], {"risk.daily_allocation": cap})  # 100 x 100 = 10,000
    at_boundary(r, "DAILY_ALLOCATION_CAP", ok)


def test_max_concurrent_positions() -> None:
    rows = [entry(0), entry(2, symbol="U")]
    frame = combine(bars(FIVE), bars(FIVE, symbol="U"))
    fails(go(rows, {"risk.max_positions": 1}, frame=frame), "MAX_POSITIONS", 1)
    passes(go(rows, {"risk.max_positions": 2}, frame=frame), 1)


def test_max_positions_counts_entries_still_working() -> None:
    """Two signals on one bar: the first entry has not filled when the second is decided,
    yet it is a position being opened, so a one-position account refuses the second."""
    rows = [entry(0), entry(0, symbol="U")]
    frame = combine(bars(FIVE), bars(FIVE, symbol="U"))
    fails(go(rows, {"risk.max_positions": 1}, frame=frame), "MAX_POSITIONS", 1)
    passes(go(rows, {"risk.max_positions": 2}, frame=frame), 1)


def test_exposure_counts_entries_still_working() -> None:
    """Buying power counts the working entry of another symbol as exposure already taken."""
    rows = [entry(0, qty=600), entry(0, symbol="U", qty=500)]  # 60,000 + 50,000 at ~100
    frame = combine(bars(FIVE), bars(FIVE, symbol="U"))
    no_shrink = {"risk.buying_power_mult": 1.0, "risk.shrink_to_fit": False}
    fails(go(rows, no_shrink, frame=frame), "BUYING_POWER", 1)
    passes(go(rows, {"risk.buying_power_mult": 1.2}, frame=frame), 1)
    r = go(rows, {"risk.buying_power_mult": 1.0}, frame=frame)  # 100,000 - 60,000 left
    passes(r, 1, "SIZE_CAPPED", "CAPPED_BY_BUYING_POWER")
    assert verdict(r, 1)["qty"] == 400.0


def test_adding_to_a_winner_only_when_allowed() -> None:
    up = [FLAT, FLAT, (100.0, 106.0, 100.0, 105.0), FLAT, FLAT]
    rows = [entry(0), entry(2)]
    fails(go(rows, frame=bars(up)), "DUPLICATE_POSITION", 1)
    passes(go(rows, {"risk.allow_add_to_winner": True}, frame=bars(up)), 1)
    fails(go(rows, {"risk.allow_add_to_winner": True}, frame=bars(DOWN)), "DUPLICATE_POSITION", 1)


def test_conflicting_signals_in_one_symbol() -> None:
    r = go([entry(0), entry(0, side=-1)])
    fails(r, "CONFLICTING_POSITION", 1)


@pytest.mark.parametrize(("limit", "ok"), [(0.10, True), (0.0999, False)])
def test_single_name_exposure(limit: float, ok: bool) -> None:
    risk = {"risk.max_single_name_pct": limit, "risk.shrink_to_fit": False}
    at_boundary(go([entry(0)], risk), "SINGLE_NAME_EXPOSURE", ok)


@pytest.mark.parametrize(("limit", "ok"), [(0.20, True), (0.1999, False)])
def test_sector_exposure_sums_the_sector(limit: float, ok: bool) -> None:
    inst = {"T": Instrument.equity("T", sector="tech"), "U": Instrument.equity("U", "tech")}
    frame = combine(bars(FIVE), bars(FIVE, symbol="U"))
    risk = {"risk.max_sector_pct": limit, "risk.shrink_to_fit": False}
    r = go([entry(0), entry(2, symbol="U")], risk, frame=frame, instruments=inst)
    at_boundary(r, "SECTOR_EXPOSURE", ok, 1)


@pytest.mark.parametrize(("floor", "ok"), [(100_000.0, True), (100_000.01, False)])
def test_minimum_equity(floor: float, ok: bool) -> None:
    at_boundary(go([entry(0)], {"risk.min_equity": floor}), "MIN_EQUITY", ok)


@pytest.mark.parametrize(("mult", "ok"), [(0.1, True), (0.0999, False)])
def test_buying_power(mult: float, ok: bool) -> None:
    risk = {"risk.buying_power_mult": mult, "risk.shrink_to_fit": False}
    at_boundary(go([entry(0)], risk), "BUYING_POWER", ok)


LOSER = [FLAT, FLAT, (100.0, 100.0, 97.0, 97.0), FLAT, FLAT, FLAT]


def test_consecutive_loss_lockout_for_the_rest_of_the_day() -> None:
    rows = [entry(0, **PROTECTED), entry(4)]
    r = go(rows, {"risk.max_consecutive_losses": 1}, frame=bars(LOSER))
    assert r.trades["pnl"].to_list() == [-200.0]
    fails(r, "CONSECUTIVE_LOSS_LOCKOUT", 1)
    passes(go(rows, {"risk.max_consecutive_losses": 2}, frame=bars(LOSER)), 1)
    assert "LOCKOUT" in r.guard_events["kind"].to_list()


def test_drawdown_halt_stays_until_a_manual_reset() -> None:
    rows = [entry(0, **PROTECTED), entry(3), entry(4, symbol="T", qty=1)]
    rows.insert(2, control(4, ControlAction.RESET))
    r = go(rows, {"risk.drawdown_halt_pct": 0.002}, frame=bars(LOSER))
    fails(r, "DRAWDOWN_HALT", 1)
    assert "DRAWDOWN_HALT" not in codes(r, 2)[1]
    assert "DRAWDOWN_HALTED" in r.guard_events["kind"].to_list()


def test_daily_loss_circuit_pauses_entries_for_its_hours() -> None:
    rows = [entry(0, **PROTECTED), entry(3)]
    fails(go(rows, {"risk.circuit_loss_pct": 0.002}, frame=bars(LOSER)), "DAILY_LOSS_CIRCUIT", 1)
    passes(go(rows, {"risk.circuit_loss_pct": 0.0021}, frame=bars(LOSER)), 1)


def test_new_signals_only_trades_source_ids_above_the_cursor() -> None:
    frame = combine(bars(FIVE), bars(FIVE, symbol="U"), bars(FIVE, symbol="V"))
    rows = [entry(0, source_id=316), entry(0, symbol="U", source_id=317),
            entry(1, symbol="V", source_id=317)]  # fmt: skip
    r = go(rows, {"risk.new_signals_only": True, "risk.source_cursor": 316}, frame=frame)
    fails(r, "STALE_SIGNAL", 0)
    passes(r, 1)
    fails(r, "STALE_SIGNAL", 2)  # a replayed id is stale too


def test_new_signals_only_judges_signals_by_when_they_were_sent() -> None:
    """seed 000: 317 (U, sent first) and 318 (T, a second later) fall in one bar and are
    decided in symbol order (T first); both are newer than the cursor (316) and both trade.
    Replays of either later, and an id under the cursor, are stale."""
    frame = combine(bars(FIVE), bars(FIVE, symbol="U"), bars(FIVE, symbol="V"))
    sec = 1_000_000_000
    rows = [
        entry(ts_of(0) + 2 * sec, symbol="T", source_id=318),
        entry(ts_of(0) + sec, symbol="U", source_id=317),
        entry(2, symbol="V", source_id=317),
        entry(2, symbol="V", source_id=318),
        entry(3, symbol="V", source_id=315),
    ]
    r = go(rows, {"risk.new_signals_only": True, "risk.source_cursor": 316}, frame=frame)
    got = r.verdicts.select("symbol", "source_id", "approved").rows()
    assert got[:2] == [("T", 318, True), ("U", 317, True)]  # symbol order, both trade
    for k in (2, 3, 4):
        fails(r, "STALE_SIGNAL", k)


def test_data_quality_gate() -> None:
    dead = [FLAT, FLAT, (100.0, 100.0, 100.0, 100.0, 0.0), FLAT, FLAT]  # no volume, flat
    rows = [entry(2)]
    fails(go(rows, {"risk.min_data_quality": 0.2}, frame=bars(dead)), "DATA_QUALITY")
    passes(go(rows, {"risk.min_data_quality": 0.125}, frame=bars(dead)))


def test_outside_market_hours_by_the_exchange_calendar() -> None:
    close = ts_of(390)  # 16:00 New York on the kit's day
    frame = bars([FLAT] * 3, ts=[close - 120_000_000_000, close - 60_000_000_000, close])
    rows = [entry(close - 60_000_000_000), entry(close, side=-1, qty=1)]
    r = go(rows, {"risk.market_hours": True}, frame=frame)
    passes(r, 0)
    fails(r, "OUTSIDE_MARKET_HOURS", 1)


# ---- erroneous-order controls --------------------------------------------------------------
@pytest.mark.parametrize(("limit", "ok"), [(100.0, True), (99.0, False)])
def test_max_order_quantity(limit: float, ok: bool) -> None:
    at_boundary(go([entry(0)], {"orders.max_qty": limit}), "MAX_ORDER_QTY", ok)


@pytest.mark.parametrize(("limit", "ok"), [(10_000.0, True), (9_999.0, False)])
def test_max_order_notional(limit: float, ok: bool) -> None:
    at_boundary(go([entry(0)], {"orders.max_notional": limit}), "MAX_ORDER_NOTIONAL", ok)


@pytest.mark.parametrize(("collar", "ok"), [(0.05, True), (0.0499, False)])
def test_price_collar_on_limit_entries(collar: float, ok: bool) -> None:
    r = go([entry(0, otype=1, limit_px=95.0)], {"orders.price_collar_pct": collar})
    at_boundary(r, "PRICE_COLLAR", ok)


def test_order_rate_throttle_stops_a_runaway_loop() -> None:
    rows = [entry(0), entry(0, symbol="U"), entry(0, symbol="V")]
    r = go(rows, {"orders.max_per_minute": 2}, frame=TWO)
    passes(r, 1)
    fails(r, "ORDER_RATE_THROTTLE", 2)


# ---- exit manager --------------------------------------------------------------------------
def test_time_stop_closes_a_position_without_progress() -> None:
    r = go([entry(0)], {"exits.time_stop_minutes": 2.0}, frame=bars([FLAT] * 6))
    exits = r.verdicts_ns.filter(r.verdicts_ns["source"] == "engine")
    assert exits["reason_codes"].to_list() == [["TIME_STOP_EXIT"]]
    assert exits["ts"].to_list() == [ts_of(3)]  # filled at bar 1, two minutes later
    assert r.trades["exit_reason"].to_list() == ["time_stop"]


def test_time_stop_keeps_a_position_that_made_progress() -> None:
    up = [FLAT, FLAT, (100.0, 103.0, 100.0, 102.0)] + [(102.0, 103.0, 101.0, 102.0)] * 3
    r = go([entry(0)], {"exits.time_stop_minutes": 2.0}, frame=bars(up))
    assert r.trades.is_empty()


def test_end_of_day_close_from_the_calendar() -> None:
    close = ts_of(390)
    stamps = [close - (6 - i) * 60_000_000_000 for i in range(6)]  # 15:54 .. 15:59
    r = go([entry(stamps[0])], {"exits.eod_minutes_before_close": 5.0},
           frame=bars([FLAT] * 6, ts=stamps))  # fmt: skip
    exits = r.verdicts_ns.filter(r.verdicts_ns["source"] == "engine")
    assert exits["ts"].to_list() == [close - 5 * 60_000_000_000]  # the 15:55 bar
    assert r.trades["exit_reason"].to_list() == ["eod_close"]


def test_volatility_exit_on_an_outsized_bar() -> None:
    calm = [(100.0, 100.5, 99.5, 100.0)] * 4
    frame = bars([*calm, (100.0, 104.0, 99.0, 103.0), FLAT, FLAT])
    risk = {"exits.vol_exit_mult": 3.0, "exits.vol_lookback": 3}
    r = go([entry(1)], risk, frame=frame)
    assert r.trades["exit_reason"].to_list() == ["volatility_exit"]
    engine = r.verdicts.filter(pl.col("source") == "engine").row(0, named=True)
    assert (engine["approved"], engine["reason_codes"]) == (True, ["VOLATILITY_EXIT"])


def test_signal_exit_records_its_reason_on_the_trade() -> None:
    r = go([entry(0), exit_(2, exit_reason=9)])  # OrderRole.MOMENTUM_EXHAUSTION
    assert r.trades["exit_reason"].to_list() == ["momentum_exhaustion"]


# ---- kill-switch triggers ------------------------------------------------------------------
def kill_causes(r) -> list[str]:
    return r.guard_events.filter(r.guard_events["kind"] == "KILL_ACTIVATED")["kill_cause"].to_list()


def test_daily_loss_trips_the_kill_switch_and_flattens() -> None:
    wide = {"stop_px": 90.0, "target_px": 110.0}  # the legs stay working: the switch flattens
    r = go([entry(0, **wide)], {"kill.daily_loss_dollars": 300.0}, frame=bars(LOSER))
    assert kill_causes(r) == ["DAILY_LOSS"]
    assert r.trades["exit_reason"].to_list() == ["kill_switch"]


def test_equity_below_minimum_trips_it() -> None:
    r = go([entry(0, **PROTECTED)], {"kill.min_equity": 99_900.0}, frame=bars(LOSER))
    assert kill_causes(r) == ["EQUITY_BELOW_MIN"]
    r = go([entry(0, **PROTECTED)], {"kill.min_equity": 99_700.0}, frame=bars(LOSER))
    assert kill_causes(r) == []


def test_broker_disconnect_longer_than_the_limit_trips_it() -> None:
    rows = [control(0, ControlAction.CONNECTION_LOST), entry(3)]
    r = go(rows, {"kill.disconnect_seconds": 120.0})
    assert kill_causes(r) == ["BROKER_DISCONNECTED"]
    fails(r, "KILL_SWITCH_ACTIVE", 0)
    rows = [
        control(0, ControlAction.CONNECTION_LOST),
        control(1, ControlAction.CONNECTION_RESTORED),
    ]
    assert kill_causes(go(rows, {"kill.disconnect_seconds": 120.0})) == []


def test_unexplained_desync_trips_it() -> None:
    r = go([control(1, ControlAction.DESYNC)])
    assert kill_causes(r) == ["POSITION_DESYNC"]


def test_consecutive_big_losses_trip_it() -> None:
    risk = {"kill.consecutive_losses": 1, "kill.loss_pct": 0.0019}
    r = go([entry(0, **PROTECTED)], risk, frame=bars(LOSER))
    assert kill_causes(r) == ["CONSECUTIVE_LOSSES"]
    risk["kill.loss_pct"] = 0.0021  # the 200 loss is 0.2% of equity: not big enough
    assert kill_causes(go([entry(0, **PROTECTED)], risk, frame=bars(LOSER))) == []


def test_bad_data_trips_it() -> None:
    dead = [FLAT, FLAT, (100.0, 100.0, 100.0, 100.0, 0.0), FLAT, FLAT]
    assert kill_causes(go([], {"kill.min_data_quality": 0.2}, frame=bars(dead))) == ["DATA_QUALITY"]


# ---- learning loop -------------------------------------------------------------------------
def test_quarantine_after_losses_turns_signals_into_shadow_trades_until_they_win() -> None:
    win = (100.0, 101.5, 99.5, 101.0)  # touches a 101 target, not a 98 stop
    frame = bars([*LOSER, FLAT, win, FLAT, win, FLAT, FLAT])
    shadow = {"stop_px": 98.0, "target_px": 101.0}
    rows = [entry(0, **PROTECTED), entry(6, **shadow), entry(8, **shadow), entry(10)]
    risk = {"learning.enabled": True, "learning.quarantine_losses": 1,
            "learning.reenable_shadow_wins": 2}  # fmt: skip
    r = go(rows, risk, frame=frame)
    for k in (1, 2):
        approved, names = codes(r, k)
        assert not approved and {"STRATEGY_QUARANTINED", "SHADOW_TRADE"} <= set(names)
    passes(r, 3)
    kinds = r.guard_events["kind"].to_list()
    assert kinds.count("SHADOW_CLOSED") == 2
    assert "STRATEGY_QUARANTINED" in kinds and "STRATEGY_REENABLED" in kinds


def test_throttle_under_the_win_rate_floor_halves_the_size() -> None:
    rows = [entry(0, **PROTECTED), entry(4, **PROTECTED)]
    risk = {"learning.enabled": True, "learning.min_trades": 1, "learning.quarantine_losses": 5,
            "learning.quarantine_on_negative_expectancy": False}  # fmt: skip
    r = go(rows, risk, frame=bars(LOSER))
    passes(r, 1, "SIZE_THROTTLED")
    assert verdict(r, 1)["qty"] == 50.0


# ---- the silent no-op alarm ----------------------------------------------------------------
def test_signals_without_orders_raise_the_finding() -> None:
    r = go([exit_(1), exit_(2)])
    assert r.summary()["findings"] == ["NO_ORDERS_FROM_SIGNALS"]
    assert go([entry(0)]).summary()["findings"] == []


# ---- entry styles --------------------------------------------------------------------------
def test_scale_in_adds_the_second_half_on_a_pullback_that_holds() -> None:
    dip = (100.0, 100.5, 99.4, 100.0)  # pulls back to 99.50, stop at 98 untouched
    r = go([entry(0, qty=100, scale_in_pct=0.005, **PROTECTED)], frame=bars([FLAT, dip, FLAT]))
    entries = r.orders.filter(r.orders["role"] == "ENTRY").sort("order_id")
    assert entries["qty"].to_list() == [50.0, 50.0]
    assert entries["order_type"].to_list() == ["MARKET", "LIMIT"]
    assert entries["limit_price"].to_list() == [None, 99.5]
    assert entries["status"].to_list() == ["FILLED", "FILLED"]
    legs = r.orders.filter(r.orders["role"] != "ENTRY")
    assert sorted(legs["qty"].to_list()) == [50.0, 50.0, 50.0, 50.0]  # each half protected
    assert len(set(r.orders["client_order_id"].to_list())) == r.orders.height


def test_scale_in_add_is_cancelled_when_the_stop_takes_the_first_half_out() -> None:
    gap = (100.0, 100.0, 96.0, 96.5)  # opens at 100 (first half), falls through 99.5 and 98
    crash = [FLAT, FLAT, gap, (96.5, 97.0, 96.0, 96.5)]
    r = go([entry(1, qty=100, scale_in_pct=0.005, **PROTECTED)], frame=bars(crash))
    entries = r.orders.filter(r.orders["role"] == "ENTRY").sort("order_id")
    # the limit at 99.50 is touched in the same bar as the stop: it fills first (lower id),
    # then both halves' stops close the position; nothing stays working afterwards
    assert r.orders.filter(r.orders["status"].is_in(["ACCEPTED", "PARTIALLY_FILLED"])).is_empty()
    assert r.trades["qty"].sum() > 0 and entries.height == 2


def test_scale_in_add_filled_in_the_stops_bar_is_closed_by_its_own_stop() -> None:
    # Known limit: when one bar touches both the add's limit and the first half's stop, the
    # add fills first (id order) and its own legs protect it from the next bar on.
    stop_bar = (100.0, 100.2, 97.5, 97.8)  # stop 98 hit; the 99.90 add is above the low too
    after = (97.8, 99.8, 97.8, 99.6)  # later pullback level traded again
    r = go([entry(0, qty=100, scale_in_pct=0.001, **PROTECTED)],
           frame=bars([FLAT, (100.0, 100.2, 99.95, 100.1), stop_bar, after]))  # fmt: skip
    add = r.orders.filter((r.orders["role"] == "ENTRY") & (r.orders["order_type"] == "LIMIT"))
    assert add["limit_price"].to_list() == [99.9]
    positions = r.fills.with_columns(
        q=pl.when(pl.col("side") == "BUY").then(pl.col("qty")).otherwise(-pl.col("qty"))
    )["q"].cum_sum()
    assert positions[-1] == 0.0  # flat at the end: no unprotected add after the stop


# ---- trailing stops from a strategy's price line (stop updates) -------------------------
def stop_update(bar: int, level: float, symbol: str = "T") -> dict:
    return {"ts": ts_of(bar), "symbol": symbol, "kind": 3, "stop_px": level}


RISING = [FLAT, FLAT, (100.0, 101.0, 99.8, 100.8), (100.8, 101.5, 100.6, 101.2)]


@pytest.mark.parametrize(
    ("side", "level", "code"),
    [
        (1, 98.01, "STOP_MOVED"),  # the entry's stop is 98.00: one tick up tightens it
        (1, 98.0, "STOP_NOT_TIGHTER"),
        (1, 97.5, "STOP_NOT_TIGHTER"),
        (-1, 101.99, "STOP_MOVED"),  # a short's stop at 102.00: one tick down tightens it
        (-1, 102.0, "STOP_NOT_TIGHTER"),
    ],
)
def test_stop_update_only_tightens(side: int, level: float, code: str) -> None:
    r = go([entry(0, side=side, stop_pct=0.02, target_pct=0.04), stop_update(1, level)])
    v = verdict(r, 1)
    assert (v["intent"], v["reason_codes"], v["price"]) == ("STOP_UPDATE", [code], level)
    assert v["approved"] is (code == "STOP_MOVED")
    leg = r.orders.filter(pl.col("role") == "STOP_LOSS").row(0, named=True)
    assert leg["stop_price"] == (level if code == "STOP_MOVED" else 100.0 - side * 2.0)
    assert ("STOP_MOVED" in leg["reason_codes"]) is (code == "STOP_MOVED")


def test_stop_update_without_a_stop_to_move_is_refused() -> None:
    flat = go([stop_update(1, 99.0)])
    assert codes(flat, 0) == (False, ["STOP_UPDATE_NO_STOP"])
    bare = go([entry(0), stop_update(1, 99.0)])  # held, but with no stop leg
    assert codes(bare, 1) == (False, ["STOP_UPDATE_NO_STOP"])
    assert flat.summary()["signals"] == 0 and flat.summary()["stop_updates"] == 1


def test_moved_stop_takes_the_position_out_at_the_new_level() -> None:
    rows = [entry(0, stop_pct=0.02, target_pct=0.10), stop_update(2, 100.5), stop_update(3, 100.7)]
    r = go(rows, frame=bars([*RISING, (101.0, 101.1, 100.2, 100.4), FLAT]))
    assert [verdict(r, k)["reason_codes"] for k in (1, 2)] == [["STOP_MOVED"], ["STOP_MOVED"]]
    (trade,) = r.trades.rows(named=True)
    assert (trade["exit_price"], trade["exit_reason"]) == (100.7, "stop_loss")


def test_stop_update_moves_a_percent_trailing_leg_too() -> None:
    r = go([entry(0, trail_pct=0.02, target_pct=0.10), stop_update(1, 99.5)])
    leg = r.orders.filter(pl.col("role") == "TRAILING").row(0, named=True)
    assert (leg["stop_price"], verdict(r, 1)["reason_codes"]) == (99.5, ["STOP_MOVED"])


def test_stop_updates_from_a_price_column() -> None:
    from backstop.strategies import stop_updates

    frame = bars([FLAT] * 5).with_columns(line=pl.Series([None, 98.0, 98.0, 98.5, 98.2]))
    rows = stop_updates(frame, "line", strategy_id="chandelier")
    assert rows.select("ts", "stop_px", "kind").rows() == [
        (ts_of(1), 98.0, 3),
        (ts_of(3), 98.5, 3),
        (ts_of(4), 98.2, 3),
    ]
    assert rows["strategy_id"].unique().to_list() == ["chandelier"]


def test_stop_update_rows_need_a_symbol_and_a_level() -> None:
    from backstop.errors import ConfigError

    with pytest.raises(ConfigError, match="stop_px"):
        go([{"ts": ts_of(1), "symbol": "T", "kind": 3}])
    with pytest.raises(ConfigError, match="name no symbol"):
        go([{"ts": ts_of(1), "kind": 3, "stop_px": 99.0}])


def test_stop_updates_are_told_in_their_position_s_cycle(tmp_path) -> None:
    from backstop.engine.explain import explain_cycle
    from backstop.engine.journal import write_journal

    rows = [entry(0, stop_pct=0.02, target_pct=0.10), stop_update(1, 99.0), stop_update(2, 98.0)]
    frame = bars([FLAT, FLAT, (100.2, 101.0, 100.0, 100.8), (100.8, 101.0, 98.5, 99.0)])
    r = go(rows, frame=frame)
    cycles = r.verdicts.get_column("trade_cycle_id").to_list()
    assert cycles[1] == cycles[2] == cycles[0]
    story = explain_cycle(write_journal(r, tmp_path / "j.duckdb"), cycles[0])
    assert "asked to move the stop of T to 99.0000. Decision: APPROVED" in story
    assert "to 98.0000. Decision: REFUSED, the stop stayed. Why: STOP_NOT_TIGHTER" in story
    assert "exit reason: stop_loss" in story
