"""Nothing already journaled is lost: atomic journal writes, refusals instead of silent
replacement, one-line errors for journals that cannot be written or read, and run ids that
depend on the whole content of the bars."""

from __future__ import annotations

import hashlib
import resource
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from backstop import Backtest, sample_bars
from backstop.engine.journal import journal_run_id, read_table, write_journal
from backstop.errors import BackstopError


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(*args: str, cwd: Path, fsize: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:  # runs in the child: a file-size cap makes every larger write fail
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [sys.executable, "-m", "backstop.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit,
    )


@pytest.fixture(scope="module")
def runs() -> tuple:
    bars = sample_bars()
    return Backtest(bars, "sma_cross").run(), Backtest(bars, "sma_cross", fast=12).run()


def test_same_run_replaces_its_own_journal(tmp_path: Path, runs: tuple) -> None:
    a, _ = runs
    path = write_journal(a, tmp_path / "journal.duckdb")
    again = write_journal(a, path)
    assert journal_run_id(again) == a.run_id
    assert read_table(again, "trades").height == a.round_trips
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.duckdb"]  # no partials


def test_different_run_is_refused_and_the_journal_kept(tmp_path: Path, runs: tuple) -> None:
    a, b = runs
    path = write_journal(a, tmp_path / "journal.duckdb")
    before = _sha(path)
    with pytest.raises(BackstopError, match=rf"holds run {a.run_id}, not this run \({b.run_id}\)"):
        write_journal(b, path)
    assert _sha(path) == before
    write_journal(b, path, force=True)
    assert journal_run_id(path) == b.run_id


def test_a_file_that_is_not_a_journal_is_kept_unless_forced(tmp_path: Path, runs: tuple) -> None:
    a, _ = runs
    path = tmp_path / "notes.duckdb"
    path.write_text("my notes\n")
    with pytest.raises(BackstopError, match="is not a backstop journal"):
        write_journal(a, path)
    assert path.read_text() == "my notes\n"
    write_journal(a, path, force=True)
    assert journal_run_id(path) == a.run_id


def test_reading_something_that_is_not_a_journal_names_it(tmp_path: Path) -> None:
    text = tmp_path / "text.duckdb"
    text.write_text("hello\n")
    with pytest.raises(BackstopError, match=r"text\.duckdb: not a backstop journal"):
        read_table(text, "trades")
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(BackstopError, match=r"not a backstop journal \(no table 'trades'\)"):
        read_table(empty, "trades")
    with pytest.raises(BackstopError, match=r"missing\.duckdb: no such journal"):
        read_table(tmp_path / "missing.duckdb", "trades")


def test_failed_write_leaves_the_earlier_journal_byte_identical(tmp_path: Path) -> None:
    """A write error mid-journal (here the OS refuses to grow any file past 64 KiB, as a full
    disk would): exit 2, one line on stderr, the earlier journal untouched, nothing left."""
    folder = tmp_path / "j"
    first = _cli("backtest", "--journal", str(folder), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    journal = folder / "journal.duckdb"
    before = _sha(journal)
    failed = _cli(
        "backtest", "--param", "fast=12", "--journal", str(folder), "--force", "--json",
        cwd=tmp_path, fsize=64 * 1024,
    )  # fmt: skip
    assert failed.returncode == 2
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1, failed.stderr
    assert lines[0].startswith(f"backstop: error: {journal}: journal not written (")
    assert lines[0].endswith("; the earlier journal there is unchanged")
    assert "Traceback" not in failed.stderr
    assert _sha(journal) == before
    assert sorted(p.name for p in folder.iterdir()) == ["journal.duckdb"]


def test_cli_refuses_to_replace_another_runs_journal(tmp_path: Path) -> None:
    folder = tmp_path / "j"
    assert _cli("backtest", "--journal", str(folder), cwd=tmp_path).returncode == 0
    before = _sha(folder / "journal.duckdb")
    p = _cli("backtest", "--param", "fast=12", "--journal", str(folder), cwd=tmp_path)
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1
    assert "pass --force" in p.stderr and "not this run" in p.stderr
    assert _sha(folder / "journal.duckdb") == before


def test_cli_journal_naming_a_file(tmp_path: Path) -> None:
    plain = tmp_path / "taken.txt"
    plain.write_text("x")
    p = _cli("backtest", "--journal", str(plain), cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip() == (
        f"backstop: error: --journal: {plain} is a file, not a folder "
        "(give a folder or a .duckdb file)"
    )
    as_file = tmp_path / "mine.duckdb"
    p = _cli("backtest", "--journal", str(as_file), "--json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert journal_run_id(as_file) is not None


def test_explain_on_a_file_that_is_not_a_journal(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.duckdb"
    bogus.write_bytes(b"\x00\x01not duckdb")
    p = _cli("explain", str(bogus), "abc-0000001", cwd=tmp_path)
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1
    assert f"{bogus}: not a backstop journal" in p.stderr
    p = _cli("explain", str(tmp_path / "nowhere"), "abc-0000001", cwd=tmp_path)
    assert p.returncode == 2 and "no such journal" in p.stderr


@pytest.mark.parametrize(
    "change",
    [
        pl.col("open") + pl.when(pl.int_range(pl.len()) == 7).then(0.01).otherwise(0.0),
        pl.col("low") - pl.when(pl.int_range(pl.len()) == 7).then(0.01).otherwise(0.0),
        pl.col("volume") + pl.when(pl.int_range(pl.len()) == 7).then(1.0).otherwise(0.0),
    ],
    ids=["open", "low", "volume"],
)
def test_run_id_depends_on_every_column(change: pl.Expr) -> None:
    bars = sample_bars()
    name = change.meta.output_name()
    other = bars.with_columns(change.alias(name))
    assert _fingerprint(other) != _fingerprint(bars)


def test_run_id_depends_on_symbol_names() -> None:
    bars = sample_bars()
    first = bars.get_column("symbol").min()
    renamed = bars.with_columns(
        pl.when(pl.col("symbol") == first)
        .then(pl.lit("ZZZ_" + first))
        .otherwise(pl.col("symbol"))
        .alias("symbol")
    )
    assert renamed.get_column("symbol").n_unique() == 3
    assert _fingerprint(renamed) != _fingerprint(bars)
    assert _fingerprint(bars) == _fingerprint(sample_bars())


def _fingerprint(bars: pl.DataFrame) -> str:
    return Backtest(bars, "sma_cross").prepared.fingerprint


def test_the_fingerprint_hashed_on_a_thread_is_the_bars_own_and_pickles() -> None:
    import pickle

    from backstop.engine.prepare import PreparedBars, data_fingerprint

    prepared = PreparedBars.of(sample_bars())
    expect = data_fingerprint(prepared.arrays)  # hashed here, in this thread
    assert prepared.fingerprint == expect
    assert len(expect) == 16 and int(expect, 16) >= 0
    copy = pickle.loads(pickle.dumps(prepared))
    assert copy.fingerprint == expect
    assert copy.bars.equals(prepared.bars) and copy.counts == prepared.counts
    assert Backtest(copy, "sma_cross").run().run_id == Backtest(prepared, "sma_cross").run().run_id
