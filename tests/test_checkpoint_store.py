"""CheckpointStore: a checkpoint saved in place, writing only what changed.

A save that appends to a large array writes its last chunk or two, not the array; what a
store holds loads back equal (dtypes, shapes, structured and text arrays); a save that fails
midway leaves the previous one; a file written whole by ``save_checkpoint`` is taken over; a
store reopened by a new process (a restarted runner) brings it up to date."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backstop.engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from backstop.engine.checkpoint_store import CHUNK_BYTES, CheckpointStore, parts_equal
from backstop.errors import BackstopError

REC = np.dtype([("ts", np.int64), ("px", np.float64), ("side", np.int8)])


def state(n: int, note: str = "[]") -> Checkpoint:
    rec = np.zeros(n, dtype=REC)
    rec["ts"] = np.arange(n)
    rec["px"] = 100.0 + 0.01 * np.arange(n)
    return Checkpoint(
        run_id="run1",
        counters={"bars_done": n, "events_done": n // 2},
        parts={
            "bars": {"close": np.arange(n, dtype=np.float64), "sym": np.zeros(n, np.int32)},
            "fills": {"rec": rec, "grid": np.ones((n, 3))},
            "session": {"note": np.array([note], dtype=np.str_)},
        },
    )


def test_a_store_writes_what_changed_and_loads_back_equal(tmp_path: Path) -> None:
    path = tmp_path / "state.ckpt"
    store = CheckpointStore(path)
    store.save(state(50_000))
    first = store.written
    assert first == 50_000 * (8 + 4 + REC.itemsize + 24) + 2 * 4  # everything, once
    store.save(state(50_001, note='["a"]'))
    # each array grew by one row: only its last chunk (and the one it spills into) is new
    assert 0 < store.written <= 4 * 2 * CHUNK_BYTES + 8
    loaded = load_checkpoint(path)
    assert loaded.counters == {"bars_done": 50_001, "events_done": 25_000}
    assert parts_equal(loaded.parts, state(50_001, note='["a"]').parts)
    store.save(state(10))  # a shorter state drops the chunks past its end
    assert parts_equal(load_checkpoint(path).parts, state(10).parts)
    store.close()


def test_a_failed_save_leaves_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "state.ckpt"
    store = CheckpointStore(path)
    store.save(state(1000))
    bad = state(1001)
    bad.parts["fills"]["obj"] = np.array([object()], dtype=object)  # cannot be stored
    with pytest.raises((BackstopError, ValueError)):
        store.save(bad)
    assert parts_equal(load_checkpoint(path).parts, state(1000).parts)
    store.save(state(1002))  # the store starts over and goes on
    assert parts_equal(load_checkpoint(path).parts, state(1002).parts)


def test_a_whole_file_is_taken_over_and_a_new_store_resumes_one(tmp_path: Path) -> None:
    path = tmp_path / "state.ckpt"
    save_checkpoint(path, state(300))  # written whole, by the older layout
    assert parts_equal(load_checkpoint(path).parts, state(300).parts)
    CheckpointStore(path).save(state(301))  # takes it over
    again = CheckpointStore(path)  # a restarted runner: the same file, a new store
    again.save(state(302))
    assert again.written == sum(
        a.nbytes for arrays in state(302).parts.values() for a in arrays.values()
    )  # its first save writes the whole state, in one transaction
    again.save(state(303))
    again.save(state(303))
    assert again.written == 0  # nothing changed: nothing written but the counters
    assert parts_equal(load_checkpoint(path).parts, state(303).parts)
