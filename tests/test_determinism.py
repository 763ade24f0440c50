"""Same inputs, same journal: hashed table by table, and the DuckDB bytes themselves."""

from __future__ import annotations

from pathlib import Path

from backstop.data import gbm_bars
from backstop.engine.backtest import Backtest
from backstop.engine.journal import journal_digest, write_journal


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
