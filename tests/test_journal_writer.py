"""The journal's writer thread: statements in the order handed over, a failure never lost."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from backstop.engine.journal_writer import JournalWriter


def _frame(start: int, n: int) -> pl.DataFrame:
    return pl.DataFrame({"k": list(range(start, start + n)), "s": [f"row{i}" for i in range(n)]})


def test_inserts_run_in_the_order_handed_over(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "j.duckdb"))
    con.execute("BEGIN TRANSACTION")
    with JournalWriter(con) as writer:
        writer.insert("t", _frame(0, 3), create=True)
        for start in range(3, 30, 3):  # more batches than the queue holds
            writer.insert("t", _frame(start, 3), create=False)
        writer.insert("tmp", _frame(100, 2), create=True, temporary=True)
        writer.execute("CREATE TABLE u AS SELECT k FROM tmp")
        writer.execute("DROP TABLE tmp")
    con.execute("COMMIT")
    keys = [row[0] for row in con.execute("SELECT k FROM t").fetchall()]
    assert keys == list(range(30))
    assert con.execute("SELECT k FROM u ORDER BY k").fetchall() == [(100,), (101,)]
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'tmp'").fetchall()[
        0
    ] == (0,)
    con.close()


def test_a_failed_statement_stops_the_later_ones_and_is_raised_at_close(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "j.duckdb"))
    writer = JournalWriter(con)
    writer.insert("t", _frame(0, 2), create=True)
    writer.insert("missing", _frame(2, 2), create=False)  # no such table
    writer.execute("CREATE TABLE later AS SELECT 1 AS x")
    with pytest.raises(duckdb.CatalogException, match="missing"):
        writer.close()
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(2,)]
    names = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert names == {"t"}  # the statement after the failure never ran
    con.close()


def test_a_failure_is_raised_at_the_next_insert(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "j.duckdb"))
    writer = JournalWriter(con)
    writer.insert("missing", _frame(0, 2), create=False)
    writer.close(raise_failure=False)  # waits: the failure is recorded
    with pytest.raises(duckdb.CatalogException):
        writer.insert("t", _frame(0, 2), create=True)
    con.close()


def test_an_error_in_the_block_is_the_one_raised_and_the_thread_ends(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "j.duckdb"))
    with pytest.raises(KeyError, match="built wrong"), JournalWriter(con) as writer:
        writer.insert("missing", _frame(0, 2), create=False)  # fails on the thread too
        raise KeyError("built wrong")
    assert not writer._thread.is_alive()
    con.close()
