"""The guard rules the seeds asked for beyond the core pipeline, each on hand-made kit bars.

Entries are decided at bar 0's close (100) and fill at bar 1's open (100) on FLAT bars; the
account starts at 100,000. Each test's docstring names the seed whose rule it checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from kit import bars, combine, entry, run, ts_of

from backstop.domain.instruments import Instrument
from backstop.engine.profile import RiskProfile, preset_names

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
