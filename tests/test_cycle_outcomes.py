"""Seed 001's outcome record: one row per entry cycle with its decision context, result and
attribution category, from a result's frames or from its journal."""

from __future__ import annotations

from pathlib import Path

from kit import bars, combine, entry, run
from test_learning_state import SIGNAL_BARS, frame, profile, rows
from test_learning_state import run as run_learning

from backstop.engine.journal import write_journal
from backstop.report import CATEGORIES, cycle_outcomes, journal_cycle_outcomes

FLAT = (100.0, 101.0, 99.0, 100.0)


def outcomes(result):
    return cycle_outcomes(result.verdicts, result.fills, result.trades)


def test_the_learning_loops_cycles_are_won_lost_and_shadowed() -> None:
    """seed 001: the three trades before the quarantine (+300, -200, -200 on a 200 risk),
    the two shadow trades while quarantined, and the win after it, each with its R."""
    out = outcomes(run_learning(frame(), rows(), profile=profile()))
    assert out.height == len(SIGNAL_BARS)
    assert out["category"].to_list() == ["WIN", "LOSS", "LOSS", "SHADOW", "SHADOW", "WIN"]
    assert out["r_multiple"].to_list() == [1.5, -1.0, -1.0, None, None, 1.5]
    assert out["exit_reason"].to_list() == [
        "take_profit", "stop_loss", "stop_loss", None, None, "take_profit"
    ]  # fmt: skip
    assert out["equity"].to_list() == [
        100_000.0,
        100_300.0,
        100_100.0,
        99_900.0,
        99_900.0,
        99_900.0,
    ]


def test_refused_not_filled_and_open_cycles() -> None:
    """A market entry still held at the end is OPEN, a second one on the same symbol is
    REFUSED (its reason codes kept), a limit far below the market never fills."""
    frames = combine(bars([FLAT] * 6), bars([FLAT] * 6, symbol="U"))
    r = run(
        frames,
        [entry(0), entry(1), entry(0, symbol="U", otype=1, limit_px=90.0, tif=0)],
    )
    out = outcomes(r).sort("ts", "symbol")
    got = list(out.select("symbol", "category", "reason_codes").iter_rows())
    assert got == [
        ("T", "OPEN", []),
        ("U", "NOT_FILLED", []),
        ("T", "REFUSED", ["DUPLICATE_POSITION"]),
    ]
    assert out["filled_qty"].to_list() == [100.0, 0.0, 0.0]
    assert set(out["category"]) <= set(CATEGORIES)


def test_the_journal_gives_the_same_records(tmp_path: Path) -> None:
    """The journal's verdicts, fills and trades tables give the very same rows."""
    result = run_learning(frame(), rows(), profile=profile())
    path = write_journal(result, tmp_path / "journal.duckdb")
    a = outcomes(result).drop("ts")
    b = journal_cycle_outcomes(path).drop("ts")
    assert a.to_dicts() == b.to_dicts()
