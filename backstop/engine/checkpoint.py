"""Durable runner state: what a restarted runner needs to resume exactly where it stopped.

A runner can be killed at any instant. What it decided lives in the compiled core's state
structs (guardrail state with the kill switch, halts, lockouts, quarantine, the day's trade
counts and loss, the new-signals cursor per strategy; the portfolio; the verdicts so far)
and in its position in the input (bars and events done). A ``Checkpoint`` holds all of it:
each part is a state struct's field arrays, saved whole (``np.save`` bytes, dtypes and shapes
included) with a few named integers, in one DuckDB file replaced atomically
(``backstop.engine.atomic``). So a restart resumes HALTED as HALTED, keeps the day's limits,
and never decides a signal twice: the checkpoint after an event records that event as done.

The checkpoint knows nothing of brokers. The event driver adds its mirror of the broker, its
bracket plans and its booked fills (``PortDriver.snapshot``); a simulated venue that lives in
the same process saves its book as one more part (``SimExchange.snapshot``); a live broker
keeps its own state, and the runner reconciles with it after a restart.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from backstop.engine.atomic import replacing
from backstop.engine.core.state import StateStruct
from backstop.errors import BackstopError

CHECKPOINT_VERSION = 2  # 2: per-strategy guard columns (own limits, halts); the store is 3
CHECKPOINT_FILE = "state.duckdb"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A runner's state at one point of its input: named parts of named arrays, and counters.

    ``counters`` hold at least ``bars_done`` and ``events_done`` (how far the input was
    driven); ``run_id`` ties the checkpoint to the inputs it belongs to."""

    run_id: str
    counters: Mapping[str, int]
    parts: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)

    def counter(self, name: str) -> int:
        if name not in self.counters:
            raise BackstopError(f"checkpoint of run {self.run_id} has no counter {name!r}")
        return int(self.counters[name])

    def part(self, name: str) -> Mapping[str, np.ndarray]:
        if name not in self.parts:
            raise BackstopError(f"checkpoint of run {self.run_id} has no part {name!r}")
        return self.parts[name]


def struct_arrays(struct: StateStruct) -> dict[str, np.ndarray]:
    """Copies of a state struct's field arrays, by field name (the struct keeps running)."""
    held = struct.__dict__["_held"]
    return {name: np.array(a, copy=True) for name, a in zip(struct._names, held, strict=True)}


def rebuild(kind: type[StateStruct], make: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """A new state struct of ``kind`` over ``arrays`` (its ``_make_*`` kernel is ``make``)."""
    missing = [name for name in kind._names if name not in arrays]
    if missing:
        raise BackstopError(f"checkpoint: {kind.__name__} lacks field(s) {', '.join(missing)}")
    return kind.build(make, tuple(np.ascontiguousarray(arrays[n]) for n in kind._names))


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically: the previous one stays until this one is
    complete on disk. Errors are one BackstopError naming the path and the cause."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path, checkpoint.run_id) as partial:
            con = duckdb.connect(str(partial))
            try:
                con.execute("BEGIN TRANSACTION")
                con.execute("CREATE TABLE meta (key VARCHAR, value VARCHAR)")
                meta = [("version", str(CHECKPOINT_VERSION)), ("run_id", checkpoint.run_id)]
                meta += [(f"counter.{k}", str(int(v))) for k, v in checkpoint.counters.items()]
                con.executemany("INSERT INTO meta VALUES (?, ?)", meta)
                con.execute("CREATE TABLE arrays (part VARCHAR, field VARCHAR, npy BLOB)")
                rows = [
                    (part, name, _npy(array))
                    for part, arrays in checkpoint.parts.items()
                    for name, array in arrays.items()
                ]
                con.executemany("INSERT INTO arrays VALUES (?, ?, ?)", rows)
                con.execute("COMMIT")
                con.execute("CHECKPOINT")
            finally:
                con.close()
    except (duckdb.Error, OSError) as exc:
        cause = " ".join(str(exc).split())
        raise BackstopError(f"{path}: checkpoint not written ({cause})") from None
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``; anything else is a BackstopError."""
    path = Path(path)
    if not path.exists():
        raise BackstopError(f"{path}: no such checkpoint")
    from backstop.engine.checkpoint_store import STORE_VERSION, read_store

    parts: dict[str, dict[str, np.ndarray]] = {}
    try:
        # not read-only: a store killed mid-save is brought back to its last save by DuckDB
        # replaying its write-ahead log, which a read-only open cannot do
        con = duckdb.connect(str(path))
        try:
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("version") == str(CHECKPOINT_VERSION):
                for part, name, blob in con.execute(
                    "SELECT part, field, npy FROM arrays"
                ).fetchall():
                    parts.setdefault(part, {})[name] = np.load(io.BytesIO(blob), allow_pickle=False)
            elif meta.get("version") == str(STORE_VERSION):
                parts = read_store(con, path)
        finally:
            con.close()
    except duckdb.Error as exc:
        cause = " ".join(str(exc).split())
        raise BackstopError(f"{path}: not a backstop checkpoint ({cause})") from None
    if meta.get("version") not in (str(CHECKPOINT_VERSION), str(STORE_VERSION)):
        raise BackstopError(
            f"{path}: checkpoint version {meta.get('version')!r}, this backstop reads "
            f"{CHECKPOINT_VERSION} and {STORE_VERSION}"
        )
    counters = {k.removeprefix("counter."): int(v) for k, v in meta.items() if k[:8] == "counter."}
    return Checkpoint(run_id=meta["run_id"], counters=counters, parts=parts)


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()
