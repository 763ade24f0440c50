"""Same inputs, same journal: hashed table by table, and the DuckDB bytes themselves."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from backstop.data import gbm_bars
from backstop.engine import journal, journal_writer
from backstop.engine.journal import journal_digest, write_journal
from backstop.engine.journal_reconcile import reconcile_frame
from backstop.runners.backtest import Backtest


def test_two_runs_give_identical_journals(tmp_path: Path) -> None:
    bars = gbm_bars(20_000, 3, seed=9, sigma=0.003)
    a = write_journal(Backtest(bars, "sma_cross").run(), tmp_path / "a" / "journal.duckdb")
    b = write_journal(Backtest(bars, "sma_cross").run(), tmp_path / "b" / "journal.duckdb")
    assert journal_digest(a) == journal_digest(b)


def test_different_inputs_give_different_journals(tmp_path: Path) -> None:
    bars = gbm_bars(20_000, 3, seed=9, sigma=0.003)
    a = write_journal(Backtest(bars, "sma_cross").run(), tmp_path / "a" / "journal.duckdb")
    b = write_journal(Backtest(bars, "sma_cross", fast=12).run(), tmp_path / "b" / "journal.duckdb")
    assert journal_digest(a) != journal_digest(b)


def timeline_in_memory(result) -> pl.DataFrame:
    """The reference: every timeline part at once, ordered by (ts, priority, part, row)."""
    frames = {name: getattr(result, name, None) for name in journal._SOURCES}
    frames["reconcile"] = reconcile_frame(result.reconcile_rows)  # a live run's; none here
    parts = [p for name in journal._SOURCES for p in journal.timeline_parts(name, frames[name])]
    return (
        pl.concat(parts, how="vertical")
        .sort(["ts", "priority", "part", "idx"], maintain_order=True)
        .with_row_index("seq")
        .select("ts", "priority", "seq", *list(journal._TIMELINE)[1:])
    )


def test_journal_tables_are_the_result_frames_whatever_the_batch_size(
    tmp_path: Path, monkeypatch
) -> None:
    """The journal writes records in batches and orders the timeline inside DuckDB; each
    table must still be exactly the result's frame, and the events table exactly the whole
    timeline sorted in memory, however the batches fall (here: 7 records, so parts span
    batches)."""
    result = Backtest(gbm_bars(3_000, 3, seed=2, sigma=0.004), "sma_cross", fast=5, slow=20).run()
    big = write_journal(result, tmp_path / "big" / "journal.duckdb")
    monkeypatch.setattr(journal, "BATCH_ROWS", 7)
    small = write_journal(result, tmp_path / "small" / "journal.duckdb")
    assert journal_digest(big) == journal_digest(small)
    # a timeline too long for memory is staged and ordered inside DuckDB: the same journal
    monkeypatch.setattr(journal, "TIMELINE_MEMORY_ROWS", 0)
    spilled = write_journal(result, tmp_path / "spilled" / "journal.duckdb")
    assert journal_digest(spilled) == journal_digest(small)
    assert result.trades.height > 20
    frames = {
        "verdicts": result.verdicts,
        "orders": result.orders,
        "fills": result.fills,
        "trades": result.trades,
        "guard": result.guard_events,
        "equity": result.equity,
        "events": timeline_in_memory(result),
    }
    for table, frame in frames.items():
        stored = journal.read_table(small, table)
        assert stored.equals(frame, null_equal=True), table


def test_string_views_and_large_strings_give_the_same_journal(tmp_path: Path, monkeypatch) -> None:
    """The journal hands DuckDB its strings as Arrow string views where DuckDB reads them;
    the stored tables must be the very ones the large-string copy gave, down to the file's
    table types."""
    result = Backtest(gbm_bars(3_000, 3, seed=2, sigma=0.004), "sma_cross", fast=5, slow=20).run()
    assert journal_writer._STRING_VIEWS  # this environment's DuckDB reads them (>= 1.1)
    views = write_journal(result, tmp_path / "views" / "journal.duckdb")
    monkeypatch.setattr(journal_writer, "_STRING_VIEWS", False)
    large = write_journal(result, tmp_path / "large" / "journal.duckdb")
    assert journal_digest(views) == journal_digest(large)
    for table in journal.TABLES:
        assert journal.read_table(views, table).schema == journal.read_table(large, table).schema
    assert result.orders.height > 20
