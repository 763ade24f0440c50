"""The backtest command starts reading a Parquet file before importing the engine.

``cli._start_reading`` starts the read only for one existing Parquet file; ``load_checked``
takes that read's frame for that file only, and words a failed read exactly as a read of its
own would have been worded.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import polars as pl
import pytest

from backstop.cli import _start_reading
from backstop.data import gbm_bars
from backstop.errors import DataError
from backstop.runners.bars_in import load_checked


def _done(value: pl.DataFrame | None = None, error: BaseException | None = None) -> Future:
    future: Future = Future()
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(error)
    return future


def test_the_read_starts_for_one_parquet_file_only(tmp_path: Path) -> None:
    bars = gbm_bars(30, 2)
    bars.write_parquet(tmp_path / "b.parquet")
    bars.write_csv(tmp_path / "b.csv")
    started = _start_reading(str(tmp_path / "b.parquet"))
    assert started is not None
    path, future = started
    assert path == tmp_path / "b.parquet"
    assert future.result().equals(bars)
    for data in ("b.csv", "missing.parquet", "*.parquet", "b[0].parquet", ""):
        assert _start_reading(str(tmp_path / data) if data else data) is None
    assert _start_reading(None) is None


def test_load_checked_takes_the_frame_read_ahead_for_that_file(tmp_path: Path) -> None:
    on_disk, read_ahead = gbm_bars(30, 2, seed=1), gbm_bars(30, 2, seed=2)
    on_disk.write_parquet(tmp_path / "b.parquet")
    on_disk.write_parquet(tmp_path / "other.parquet")
    file = tmp_path / "b.parquet"
    checked, _ = load_checked(file, prefetched=(file, _done(read_ahead)))
    assert checked.bars.equals(read_ahead)
    other, _ = load_checked(tmp_path / "other.parquet", prefetched=(file, _done(read_ahead)))
    assert other.bars.equals(on_disk)


def test_a_failed_read_ahead_is_worded_as_the_loader_words_it(tmp_path: Path) -> None:
    file = tmp_path / "b.parquet"
    file.write_bytes(b"not parquet")
    with pytest.raises(DataError) as own:
        load_checked(file)
    try:
        pl.read_parquet(file)
    except pl.exceptions.PolarsError as exc:
        failed = _done(error=exc)
    with pytest.raises(DataError) as ahead:
        load_checked(file, prefetched=(file, failed))
    assert str(ahead.value) == str(own.value)
    assert str(own.value).startswith(f"{file}: cannot read Parquet: ")
