"""The guard rules the seeds asked for beyond the core pipeline, each on hand-made kit bars.

Entries are decided at bar 0's close (100) and fill at bar 1's open (100) on FLAT bars; the
account starts at 100,000. Each test's docstring names the seed whose rule it checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest
from kit import bars, combine, entry, exit_, run, ts_of

from backstop.domain.instruments import Instrument
from backstop.engine.journal import write_journal
from backstop.engine.profile import RiskProfile, preset_names
from backstop.errors import ConfigError
from backstop.report import (
    daily_pnl,
    execution_quality,
    journal_daily_pnl,
    load_report,
    render_markdown,
)

FLAT = (100.0, 101.0, 99.0, 100.0)
FIVE = [FLAT] * 5
TWO = combine(bars(FIVE), bars(FIVE, symbol="U"))
TECH = {"T": Instrument.equity("T", sector="tech"), "U": Instrument.equity("U", "tech")}


def verdict(result, k: int = 0) -> dict:
    return result.verdicts.row(k, named=True)


def entry_qty(result) -> list[float]:
    return result.orders.filter(result.orders["role"] == "ENTRY")["qty"].to_list()


def stop_update(bar: int, level: float) -> dict:
    return {"ts": ts_of(bar), "symbol": "T", "kind": 3, "stop_px": level}


# ---- exposure limits shrink the size before they refuse ------------------------------------
def test_single_name_limit_shrinks_the_entry_to_the_largest_lot_that_fits() -> None:
    """seed 002: "reduced size due to exposure limits": 100 x 100 = 10,000 against a
    9,990 single-name limit leaves room for 99.9 shares: 99 go out, approved."""
    r = run(bars(FIVE), [entry(0)], risk={"risk.max_single_name_pct": 0.0999})
    v = verdict(r)
    assert v["approved"] and v["reason_codes"] == ["SIZE_CAPPED", "CAPPED_BY_SINGLE_NAME"]
    assert v["qty"] == 99.0 and entry_qty(r) == [99.0]
    assert v["exposure"] == pytest.approx(9_900.0)


def test_sector_limit_shrinks_to_the_sectors_room() -> None:
    """seed 002: T holds 10,000 of tech; a 15% sector limit leaves 5,000 for U: 50 shares."""
    rows = [entry(0), entry(2, symbol="U")]
    r = run(TWO, rows, risk={"risk.max_sector_pct": 0.15}, instruments=TECH)
    v = verdict(r, 1)
    assert v["approved"] and v["reason_codes"] == ["SIZE_CAPPED", "CAPPED_BY_SECTOR"]
    assert v["qty"] == 50.0 and entry_qty(r) == [100.0, 50.0]


def test_the_tightest_limit_is_the_one_named() -> None:
    """seed 002: single name allows 50 shares, buying power 80: the size is 50 and the
    verdict names the single-name limit, the one that bound."""
    risk = {"risk.max_single_name_pct": 0.05, "risk.buying_power_mult": 0.08}
    v = verdict(run(bars(FIVE), [entry(0)], risk=risk))
    assert v["approved"] and v["reason_codes"] == ["SIZE_CAPPED", "CAPPED_BY_SINGLE_NAME"]
    assert v["qty"] == 50.0


def test_the_risk_at_the_stop_is_the_shrunk_sizes() -> None:
    """seed 002: the verdict's risk is for the quantity sent (40 x 2 = 80), not the asked."""
    risk = {"risk.buying_power_mult": 0.04}
    v = verdict(run(bars(FIVE), [entry(0, stop_px=98.0, target_px=104.0)], risk=risk))
    assert v["qty"] == 40.0 and v["risk"] == pytest.approx(80.0)
    assert v["reason_codes"] == ["SIZE_CAPPED", "CAPPED_BY_BUYING_POWER"]


def test_no_room_at_all_is_still_a_refusal_with_the_limits_code() -> None:
    """seed 002: the first entry takes the whole buying power; the second fits no share."""
    rows = [entry(0, qty=1000), entry(2, symbol="U")]
    r = run(TWO, rows, risk={"risk.buying_power_mult": 1.0})
    v = verdict(r, 1)
    assert not v["approved"] and v["reason_codes"] == ["BUYING_POWER"] and v["qty"] == 0.0
    assert entry_qty(r) == [1000.0]


def test_shrink_to_fit_off_refuses_as_before() -> None:
    """seed 002: ``risk.shrink_to_fit = false`` keeps the plain refusal."""
    risk = {"risk.max_single_name_pct": 0.0999, "risk.shrink_to_fit": False}
    v = verdict(run(bars(FIVE), [entry(0)], risk=risk))
    assert not v["approved"] and v["reason_codes"] == ["SINGLE_NAME_EXPOSURE"]


def test_futures_shrink_in_whole_contracts() -> None:
    """seed 002: a contract of ES at 100 is 5,000 of notional (x50); a 12,000 limit fits 2."""
    es = {"T": Instrument("T", tick_size=0.25, multiplier=50.0, is_future=True)}
    risk = {"risk.max_single_name_pct": 0.12}
    v = verdict(run(bars(FIVE), [entry(0, qty=5)], risk=risk, instruments=es))
    assert v["approved"] and v["qty"] == 2.0 and "CAPPED_BY_SINGLE_NAME" in v["reason_codes"]


# ---- a protective level of 0 or past the sane range is no protection ----------------------
PROTECT = {"entry.require_protection": True}


@pytest.mark.parametrize(
    ("levels", "codes"),
    [
        ({"stop_px": 0.0, "target_px": 104.0}, ["MISSING_PROTECTION"]),
        ({"stop_px": 98.0, "target_px": 0.0}, ["MISSING_PROTECTION", "PROTECTION_WRONG_SIDE"]),
        ({"stop_pct": 1.0, "target_pct": 0.04}, ["MISSING_PROTECTION"]),
        ({"stop_px": 101.0, "target_px": 104.0}, ["PROTECTION_WRONG_SIDE"]),
    ],
)
def test_a_stop_or_target_at_zero_is_no_protection(levels: dict, codes: list[str]) -> None:
    """seed 004: the pipeline "produced non-positive protective levels": a long's stop of 0
    is on the right side, yet it protects nothing: refused, never sent as a bracket leg."""
    r = run(bars(FIVE), [entry(0, **levels)], risk=PROTECT)
    v = verdict(r)
    assert not v["approved"] and v["reason_codes"] == codes
    assert r.orders.height == 0


def test_a_stop_of_zero_is_refused_even_without_mandatory_protection() -> None:
    """seed 004: a stop of 0 is a missing value written as a number, whatever the profile."""
    v = verdict(run(bars(FIVE), [entry(0, stop_px=0.0)]))
    assert not v["approved"] and v["reason_codes"] == ["MISSING_PROTECTION"]


@pytest.mark.parametrize(
    ("levels", "ok"),
    [
        ({"stop_px": 50.0, "target_px": 104.0}, True),  # exactly 50% away
        ({"stop_px": 49.99, "target_px": 104.0}, False),
        ({"stop_px": 98.0, "target_px": 150.0}, True),
        ({"stop_px": 98.0, "target_px": 150.01}, False),
        ({"stop_pct": 0.5, "target_pct": 0.04}, True),
        ({"stop_pct": 0.02, "target_pct": 0.51}, False),
        ({"trail_pct": 0.51, "target_pct": 0.04}, False),
    ],
)
def test_levels_past_max_protection_pct_are_no_protection(levels: dict, ok: bool) -> None:
    """seed 004: with ``entry.max_protection_pct = 0.5`` a stop or target more than half
    the entry price away is not a bracket: the boundary passes, a cent past it fails."""
    risk = PROTECT | {"entry.max_protection_pct": 0.5}
    v = verdict(run(bars(FIVE), [entry(0, qty=1, **levels)], risk=risk))
    if ok:
        assert v["approved"] and v["reason_codes"] == []
    else:
        assert not v["approved"] and v["reason_codes"] == ["MISSING_PROTECTION"]


def test_a_derived_2r_target_past_the_range_is_no_protection() -> None:
    """seed 002's 2R target on a 30% stop lies 60% away: past a 50% range, refused."""
    risk = PROTECT | {"entry.max_protection_pct": 0.5, "entry.target_r": 2.0}
    v = verdict(run(bars(FIVE), [entry(0, qty=1, stop_px=70.0)], risk=risk))
    assert not v["approved"]
    assert v["reason_codes"] == ["MISSING_PROTECTION", "TARGET_FROM_R"]


def test_a_stop_update_to_zero_is_refused() -> None:
    """seed 004: a short's stop moved "tighter" to 0 would sit below the market and fire at
    once; a level at or below 0 is refused and the working stop stays."""
    rows = [entry(0, side=-1, stop_px=102.0, target_px=96.0), stop_update(2, 0.0)]
    r = run(bars(FIVE), rows)
    v = verdict(r, 1)
    assert not v["approved"] and v["reason_codes"] == ["MISSING_PROTECTION"]
    stops = r.orders.filter(r.orders["role"] == "STOP_LOSS")["stop_price"].to_list()
    assert stops == [102.0]


def test_presets_that_require_protection_bound_its_range() -> None:
    """seed 004: every preset with mandatory protection also sets the 50% range."""
    for name in preset_names():
        p = RiskProfile.preset(name)
        if p.get("entry.require_protection"):
            assert p.get("entry.max_protection_pct") == 0.5, name


ROOT = Path(__file__).resolve().parents[1]


def _cli_json(tmp_path: Path, *args: str) -> dict:
    """The CLI of this checkout (not whichever backstop is installed), run in ``tmp_path``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run(
        [sys.executable, "-m", "backstop.cli", "backtest", "--json", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_aggressive_executor_trades_ema_clouds_with_shrunk_sizes(tmp_path: Path) -> None:
    """seed 002 end to end: before shrink-to-fit the aggressive-executor preset refused every
    ema_clouds entry on the sample (5% risk on a normal stop asks for more than 15% of equity
    in one name); now each entry is shrunk to the single-name limit and trades."""
    out = _cli_json(tmp_path, "--strategy", "ema_clouds", "--profile", "aggressive-executor")
    reasons = out["verdicts_by_reason"]
    assert out["round_trips"] > 0
    assert reasons["CAPPED_BY_SINGLE_NAME"] > 0
    assert "SINGLE_NAME_EXPOSURE" not in reasons and "BUYING_POWER" not in reasons
    con = duckdb.connect(str(tmp_path / out["journal"]), read_only=True)
    try:
        shares = con.execute(
            "SELECT qty * price / equity, reason_codes FROM verdicts"
            " WHERE approved AND intent = 'ENTRY'"
        ).fetchall()
    finally:
        con.close()
    assert shares and all(share <= 0.15 for share, _ in shares)
    assert all("CAPPED_BY_SINGLE_NAME" in codes for _, codes in shares)


# ---- limits per strategy -------------------------------------------------------------------
LOSER = [FLAT, FLAT, (100.0, 100.0, 97.0, 97.0), FLAT, FLAT, FLAT]
THREE = combine(bars(LOSER), bars(LOSER, symbol="U"), bars(LOSER, symbol="V"))


def per_strategy(**tables: dict) -> RiskProfile:
    """A profile with ``[strategy.NAME.risk]`` tables (keys without their section)."""
    return RiskProfile.from_mapping(
        {"strategy": {name: {"risk": keys} for name, keys in tables.items()}}
    )


def test_a_strategys_own_drawdown_halt_leaves_the_other_trading() -> None:
    """seed 000: "20% equity-drawdown halt (permanent pause)" per strategy: kevin's own
    0.2% halt trips on its -200 loss; momo, in the same account, keeps trading."""
    rows = [
        entry(0, stop_px=98.0, target_px=104.0, strategy_id="kevin"),
        entry(3, symbol="U", strategy_id="kevin"),
        entry(3, symbol="V", strategy_id="momo"),
    ]
    profile = per_strategy(kevin={"drawdown_halt_pct": 0.002})
    r = run(THREE, rows, profile=profile)
    assert r.trades["pnl"].to_list()[0] == -200.0
    kevin, momo = verdict(r, 1), verdict(r, 2)
    assert (kevin["strategy_id"], momo["strategy_id"]) == ("kevin", "momo")
    assert not kevin["approved"] and kevin["reason_codes"] == ["DRAWDOWN_HALT"]
    assert momo["approved"] and momo["reason_codes"] == []
    halts = r.guard_events.filter(r.guard_events["kind"] == "DRAWDOWN_HALTED")
    assert halts["strategy_id"].to_list() == ["kevin"]


def test_a_strategys_own_daily_loss_circuit_pauses_it_alone() -> None:
    """seed 000: "5% daily-loss circuit (24h pause)" per strategy (0.2% here)."""
    rows = [
        entry(0, stop_px=98.0, target_px=104.0, strategy_id="kevin"),
        entry(3, symbol="U", strategy_id="kevin"),
        entry(4, symbol="V", strategy_id="momo"),
    ]
    profile = per_strategy(kevin={"circuit_loss_pct": 0.002})
    r = run(THREE, rows, profile=profile)
    assert verdict(r, 1)["reason_codes"] == ["DAILY_LOSS_CIRCUIT"]
    assert verdict(r, 2)["approved"]
    paused = r.guard_events.filter(r.guard_events["kind"] == "CIRCUIT_PAUSED")
    assert paused["strategy_id"].to_list() == ["kevin"]


def test_trades_per_day_and_allocation_per_strategy() -> None:
    """seed 000: "10 trades/day, $20k/day allocation" per strategy (1 trade, $15k here):
    kevin's second entry and its oversized one are refused; momo has the account's none."""
    rows = [
        entry(0, symbol="T", strategy_id="kevin"),
        entry(0, symbol="U", strategy_id="kevin"),
        entry(0, symbol="V", strategy_id="momo", qty=300),
    ]
    profile = per_strategy(kevin={"max_trades_per_day": 1, "daily_allocation": 15_000.0})
    r = run(THREE, rows, profile=profile)
    assert verdict(r, 0)["approved"]
    assert verdict(r, 1)["reason_codes"] == ["MAX_TRADES_PER_DAY", "DAILY_ALLOCATION_CAP"]
    assert verdict(r, 2)["approved"]


def test_max_positions_per_strategy_counts_its_own_positions() -> None:
    """seed 003: "max 5 positions" per strategy (1 here): kevin holds T, so its U entry is
    refused; momo's position in V does not count against kevin, nor kevin's against momo."""
    rows = [
        entry(0, symbol="T", strategy_id="kevin"),
        entry(0, symbol="V", strategy_id="momo"),
        entry(2, symbol="U", strategy_id="kevin"),
    ]
    profile = per_strategy(kevin={"max_positions": 1}, momo={"max_positions": 1})
    r = run(THREE, rows, profile=profile)
    assert [verdict(r, k)["approved"] for k in range(3)] == [True, True, False]
    assert verdict(r, 2)["reason_codes"] == ["MAX_POSITIONS"]


def test_per_strategy_tables_take_only_decision_keys() -> None:
    """seed 000: exits and the kill switch act on the account, so a strategy table naming
    one is an error naming the key and the file."""
    with pytest.raises(ConfigError) as err:
        RiskProfile.from_mapping(
            {"strategy": {"kevin": {"kill": {"min_equity": 1.0}}}}, source="p.toml"
        )
    assert "strategy.kevin.kill.min_equity" in str(err.value) and "p.toml" in str(err.value)
    with pytest.raises(ConfigError) as err:
        RiskProfile.from_mapping({"strategy": {"kevin": {"risk": {"max_trades": 1}}}})
    assert "risk.max_trades" in str(err.value)


def test_strategy_tables_change_the_profile_hash_and_survive_risk_overrides() -> None:
    """seed 000: the journal keys a run by the profile hash: the tables are part of it."""
    plain = RiskProfile()
    own = per_strategy(kevin={"max_trades_per_day": 10})
    assert plain.content_hash() != own.content_hash()
    assert own.with_settings({"risk.max_positions": 3}).strategies == own.strategies


def write_bars(tmp_path: Path) -> None:
    """bars.csv: T, U and V on six one-minute bars from 2024-01-02 14:30 UTC (the LOSER
    shape: flat at 100, then a bar down to 97 that takes a 98 stop)."""
    minute = [(100, 101, 99, 100)] * 2 + [(100, 100, 97, 97)] + [(97, 98, 96, 97)] * 3
    lines = ["ts,symbol,open,high,low,close,volume"]
    for sym in ("T", "U", "V"):
        for i, (o, h, lo, c) in enumerate(minute):
            lines.append(f"2024-01-02T14:3{i}:00Z,{sym},{o},{h},{lo},{c},1000000")
    (tmp_path / "bars.csv").write_text("\n".join(lines) + "\n")


def test_two_strategies_in_one_account_from_the_cli(tmp_path: Path) -> None:
    """seed 000 end to end: one account, two signal sources with their own limits in one
    profile file; kevin's drawdown halt trips on its loss and refuses its next entry while
    momo's entry on the same bar trades."""
    write_bars(tmp_path)
    (tmp_path / "signals.csv").write_text(
        "ts,symbol,side,intent,stop,target,qty,strategy_id\n"
        "2024-01-02T14:30:00Z,T,buy,entry,98,104,100,kevin\n"
        "2024-01-02T14:33:00Z,U,buy,entry,95,104,100,kevin\n"
        "2024-01-02T14:33:00Z,V,buy,entry,95,104,100,momo\n"
    )
    (tmp_path / "desks.toml").write_text(
        '[profile]\nname = "desks"\n\n'
        "[strategy.kevin.risk]\ndrawdown_halt_pct = 0.002\n\n"
        "[strategy.momo.risk]\nmax_trades_per_day = 10\n"
    )
    out = _cli_json(
        tmp_path, "--signals", "signals.csv", "--data", "bars.csv", "--profile", "desks.toml"
    )
    assert out["verdicts_by_reason"] == {"DRAWDOWN_HALT": 1}
    con = duckdb.connect(str(tmp_path / out["journal"]), read_only=True)
    try:
        rows = con.execute(
            "SELECT strategy_id, symbol, approved, reason_codes FROM verdicts ORDER BY ts, symbol"
        ).fetchall()
        halted = con.execute(
            "SELECT strategy_id FROM guard WHERE kind = 'DRAWDOWN_HALTED'"
        ).fetchall()
    finally:
        con.close()
    assert rows == [
        ("kevin", "T", True, []),
        ("kevin", "U", False, ["DRAWDOWN_HALT"]),
        ("momo", "V", True, []),
    ]
    assert halted == [("kevin",)]


# ---- sectors from the profile ----------------------------------------------------------------
def test_a_sectors_table_gives_the_sector_cap_its_sectors() -> None:
    """seed 002: "30% sector" needs sectors; a profile's ``[sectors]`` table names them when
    the instruments do not. 15% of 99,700 equity is 14,955; T's 100 shares at 97 hold 9,700
    of tech, so U at 97 fits 54 shares; V, in energy, is not capped."""
    profile = RiskProfile.from_mapping(
        {"risk": {"max_sector_pct": 0.15}, "sectors": {"tech": ["T", "U"], "energy": ["V"]}}
    )
    rows = [entry(0), entry(2, symbol="U"), entry(2, symbol="V")]
    r = run(THREE, rows, profile=profile)
    assert verdict(r, 1)["reason_codes"] == ["SIZE_CAPPED", "CAPPED_BY_SECTOR"]
    assert verdict(r, 1)["qty"] == 54.0
    assert verdict(r, 2)["reason_codes"] == [] and verdict(r, 2)["qty"] == 100.0
    assert r.warnings == []


def test_sector_table_errors_name_the_symbol_and_both_sectors() -> None:
    """seed 002: a symbol in two sectors, or in a sector its instrument contradicts, is an
    error naming both, never a silent pick."""
    with pytest.raises(ConfigError) as err:
        RiskProfile.from_mapping({"sectors": {"tech": ["T"], "energy": ["T"]}}, source="p.toml")
    assert "sectors.energy" in str(err.value) and "'tech'" in str(err.value)
    profile = RiskProfile.from_mapping({"sectors": {"energy": ["T", "U"]}})
    with pytest.raises(ConfigError) as err:
        run(TWO, [entry(0)], profile=profile, instruments=TECH)
    assert "sectors.energy" in str(err.value) and "'tech'" in str(err.value)


def test_a_sector_cap_without_sectors_is_said_out_loud() -> None:
    """seed 002: max_sector_pct with no sector known cannot act: the run states it."""
    r = run(bars(FIVE), [entry(0)], risk={"risk.max_sector_pct": 0.3})
    assert len(r.warnings) == 1 and "no symbol of the run has a sector" in r.warnings[0]


def test_sector_cap_from_a_profile_file_on_the_cli(tmp_path: Path) -> None:
    """seed 002 end to end: ``--profile`` with a ``[sectors]`` table shrinks U to the
    tech sector's room (30,000 cap, T holds 25,000: 50 shares)."""
    write_bars(tmp_path)
    (tmp_path / "signals.csv").write_text(
        "ts,symbol,side,intent,qty\n"
        "2024-01-02T14:30:00Z,T,buy,entry,250\n"
        "2024-01-02T14:31:00Z,U,buy,entry,100\n"
    )
    (tmp_path / "tech.toml").write_text(
        '[profile]\nname = "tech"\n\n[risk]\nmax_sector_pct = 0.30\n\n'
        '[sectors]\ntech = ["T", "U"]\n'
    )
    out = _cli_json(
        tmp_path, "--signals", "signals.csv", "--data", "bars.csv", "--profile", "tech.toml"
    )
    assert out["verdicts_by_reason"] == {"CAPPED_BY_SECTOR": 1, "SIZE_CAPPED": 1}
    assert out["warnings"] == []
    con = duckdb.connect(str(tmp_path / out["journal"]), read_only=True)
    try:
        qty = con.execute("SELECT symbol, qty FROM verdicts ORDER BY ts").fetchall()
    finally:
        con.close()
    assert qty == [("T", 250.0), ("U", 50.0)]


# ---- a daily 16:05 ET signal executes at the next open -----------------------------------
DAY_NS = 86_400_000_000_000
MIDNIGHT_ET = 1_704_171_600_000_000_000  # 2024-01-02 00:00 America/New_York (Tuesday)
DAILY = [(100, 101, 99, 100), (102, 103, 101, 102), (104, 105, 103, 104), (106, 107, 105, 106)]


def et(day: int, hour: int, minute: int = 0) -> int:
    """ns UTC of ``hour:minute`` New York time on the kit's daily bar ``day`` (EST, -5 h)."""
    return MIDNIGHT_ET + day * DAY_NS + (hour * 60 + minute) * 60_000_000_000


def daily_fill(signal_ts: int) -> tuple[int, float]:
    r = run(bars(DAILY, start_ns=MIDNIGHT_ET, step_ns=DAY_NS), [entry(signal_ts, qty=10)])
    (ts, price), *_ = r.fills_ns.select("ts", "price").iter_rows()
    return ts, price


def test_a_1605_signal_on_daily_bars_fills_at_the_next_open() -> None:
    """seed 003: "signal at 16:05 ET, executed at the next 09:30 ET open": the daily bar of
    day 0 (stamped 00:00 ET) is complete at 16:00, so the 16:05 signal is decided at it and
    fills at day 1's open (102), not a session later (104)."""
    assert daily_fill(et(0, 16, 5)) == (et(1, 0), 102.0)


def test_a_signal_during_the_session_still_waits_for_the_bar_after() -> None:
    """seed 003: at 12:00 ET day 0's bar is not complete: decided at day 1, fills day 2."""
    assert daily_fill(et(0, 12)) == (et(2, 0), 104.0)


def test_a_signal_exactly_at_a_bar_stamp_keeps_the_rule() -> None:
    """seed 003: a signal stamped with day 1's own stamp is decided at day 1's bar."""
    assert daily_fill(et(1, 0)) == (et(2, 0), 104.0)


def test_a_friday_1605_signal_fills_at_mondays_open() -> None:
    """seed 003: the next open after Friday's close is Monday's (2024-01-05 -> 01-08)."""
    stamps = [et(0, 0), et(3, 0), et(6, 0), et(7, 0)]  # Tue, Fri, Mon, Tue
    frame = bars(DAILY, ts=stamps)
    r = run(frame, [entry(et(3, 16, 5), qty=10)])
    assert r.fills_ns.select("ts", "price").row(0) == (et(6, 0), 104.0)


def test_equity_runner_daily_signal_from_the_cli(tmp_path: Path) -> None:
    """seed 003 end to end with its preset: daily bars read as dates in New York time and a
    16:05 ET signal; the entry fills at the next session's open, sized at 10% of equity."""
    (tmp_path / "daily.csv").write_text(
        "Date,Open,High,Low,Close,Volume\n"
        "2024-01-02,100,101,99,100,1000000\n"
        "2024-01-03,102,103,101,102,1000000\n"
        "2024-01-04,104,105,103,104,1000000\n"
        "2024-01-05,106,107,105,106,1000000\n"
    )
    (tmp_path / "signals.csv").write_text(
        "ts,symbol,side,intent,price\n2024-01-02T16:05:00-05:00,SPY,buy,entry,100\n"
    )
    out = _cli_json(
        tmp_path,
        "--signals", "signals.csv", "--data", "daily.csv", "--symbol", "SPY",
        "--tz", "America/New_York", "--profile", "equity-runner",
    )  # fmt: skip
    con = duckdb.connect(str(tmp_path / out["journal"]), read_only=True)
    try:
        fills = con.execute("SELECT ts, price, qty FROM fills").fetchall()
    finally:
        con.close()
    assert fills == [(et(1, 0), 102.0, 100.0)]


def test_a_strategy_tables_daily_count_rolls_with_the_day() -> None:
    """seed 000: "10 trades/day" per strategy (1 here) set only in a strategy table still
    needs the session days: day 0's second entry is refused, day 2's entry trades."""
    frame = bars(DAILY, start_ns=MIDNIGHT_ET + 15 * 3600 * 10**9, step_ns=DAY_NS)  # 10:00 ET
    ts = frame["ts"].to_list()
    rows = [
        entry(ts[0], qty=1, strategy_id="kevin"),
        entry(ts[0], qty=1, strategy_id="kevin"),
        exit_(ts[1], strategy_id="kevin"),
        entry(ts[2], qty=1, strategy_id="kevin"),
    ]
    r = run(frame, rows, profile=per_strategy(kevin={"max_trades_per_day": 1}))
    v = r.verdicts
    assert v["approved"].to_list() == [True, False, True, True]
    assert v["reason_codes"].to_list()[1] == ["DUPLICATE_POSITION", "MAX_TRADES_PER_DAY"]


# ---- daily P&L per strategy ------------------------------------------------------------------
def test_daily_pnl_per_strategy_from_the_journal(tmp_path: Path) -> None:
    """seed 002: "daily P&L table and report" per strategy, read back from the journal: each
    round trip counts on its exit's New York date (kevin +20 and momo +2 on Jan 4, momo -20
    on Jan 5), and the tearsheet carries the table."""
    frame = combine(
        bars(DAILY, start_ns=MIDNIGHT_ET, step_ns=DAY_NS),
        bars(DAILY, symbol="U", start_ns=MIDNIGHT_ET, step_ns=DAY_NS),
        bars(DAILY, symbol="V", start_ns=MIDNIGHT_ET, step_ns=DAY_NS),
    )
    rows = [
        entry(et(0, 0), qty=10, strategy_id="kevin"),  # fills 102 (Jan 3), out at 104 (Jan 4)
        exit_(et(1, 0), strategy_id="kevin"),
        entry(et(0, 0), symbol="U", side=-1, qty=5, strategy_id="momo"),  # 102 -> 106
        exit_(et(2, 0), symbol="U", side=1, strategy_id="momo"),
        entry(et(0, 0), symbol="V", qty=1, strategy_id="momo"),  # 102 -> 104
        exit_(et(1, 0), symbol="V", strategy_id="momo"),
    ]
    write_journal(run(frame, rows), tmp_path / "j.duckdb")
    table = journal_daily_pnl(tmp_path / "j.duckdb")
    assert table.rows() == [
        (date(2024, 1, 4), "kevin", 1, 1, 0, 20.0, 0.0, 20.0),
        (date(2024, 1, 4), "momo", 1, 1, 0, 2.0, 0.0, 2.0),
        (date(2024, 1, 5), "momo", 1, 0, 1, -20.0, 0.0, -20.0),
    ]
    page = render_markdown(load_report(tmp_path / "j.duckdb"))
    assert "## Daily P&L per strategy" in page
    assert "| 2024-01-05 | momo | 1 | 0 | 1 | -20.00 | 0.00 | -20.00 |" in page


def test_daily_pnl_of_no_trades_is_an_empty_table() -> None:
    """seed 002: a day without closed trades has no row; no trades, no rows (typed)."""
    table = daily_pnl(run(bars(FIVE), []).trades)
    assert table.height == 0 and table.columns[:3] == ["day", "strategy_id", "trades"]


def test_the_journal_records_strategy_tables_and_sectors(tmp_path: Path) -> None:
    """seed 000: a run's journal says which limits each strategy ran under."""
    profile = RiskProfile.from_mapping(
        {
            "risk": {"max_positions": 3},
            "strategy": {"kevin": {"risk": {"max_trades_per_day": 10}}},
            "sectors": {"tech": ["T", "U"]},
        }
    )
    write_journal(run(bars(FIVE), [entry(0)], profile=profile), tmp_path / "j.duckdb")
    con = duckdb.connect(str(tmp_path / "j.duckdb"), read_only=True)
    try:
        (raw,) = con.execute("SELECT profile_settings FROM run").fetchone()
    finally:
        con.close()
    assert json.loads(raw) == {
        "risk.max_positions": 3,
        "strategy.kevin.risk.max_trades_per_day": 10,
        "sectors.tech": ["T", "U"],
    }


# ---- execution quality (EQS) -----------------------------------------------------------------
GAP_UP = [FLAT, (101.0, 102.0, 100.0, 101.0), (101.0, 102.0, 100.0, 101.0), FLAT, FLAT]
EQS_BARS = combine(bars(GAP_UP), bars(FIVE, symbol="U"), bars(FIVE, symbol="V"))


def test_entry_fills_that_slip_past_the_limit_stop_the_strategys_entries() -> None:
    """seed 001: "DVS/EQS must pass before entry decision": kevin's buy decided at 100
    fills at the 101 gap open, 100 bps worse; past a 50 bps limit its next entry is refused
    EXECUTION_QUALITY, while momo, scored on its own clean fill, still enters."""
    rows = [
        entry(0, qty=10, strategy_id="kevin"),
        entry(0, symbol="V", qty=10, strategy_id="momo"),
        entry(2, symbol="U", qty=10, strategy_id="kevin"),
        entry(3, symbol="U", qty=10, strategy_id="momo"),
    ]
    risk = {"execution.max_slippage_bps": 50.0, "execution.min_fills": 1}
    r = run(EQS_BARS, rows, risk=risk)
    assert [verdict(r, k)["approved"] for k in range(4)] == [True, True, False, True]
    assert verdict(r, 2)["reason_codes"] == ["EXECUTION_QUALITY"]
    table = execution_quality(r.verdicts, r.fills)
    assert table.rows() == [("kevin", 1, 100.0, 100.0), ("momo", 2, 0.0, 0.0)]


def test_the_eqs_gate_waits_for_min_fills_and_can_be_per_strategy() -> None:
    """seed 001: one bad fill is not a verdict on execution when min_fills is 2; a strategy
    table can set the limit for one strategy alone."""
    rows = [
        entry(0, qty=10, strategy_id="kevin"),
        entry(2, symbol="U", qty=10, strategy_id="kevin"),
    ]
    r = run(EQS_BARS, rows, risk={"execution.max_slippage_bps": 50.0, "execution.min_fills": 2})
    assert verdict(r, 1)["approved"]
    profile = RiskProfile.from_mapping(
        {"strategy": {"kevin": {"execution": {"max_slippage_bps": 50.0, "min_fills": 1}}}}
    )
    r = run(EQS_BARS, rows, profile=profile)
    assert verdict(r, 1)["reason_codes"] == ["EXECUTION_QUALITY"]
