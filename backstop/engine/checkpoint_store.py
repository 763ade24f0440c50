"""A checkpoint kept up to date in place: each save writes only what changed since the last.

``save_checkpoint`` rewrites the whole state into a new file and renames it into place:
right for a one-off save, but a live session saves after every bar that changed anything, and
its state grows with the session (bars, fills, verdicts, orders), so whole rewrites make a
long session quadratic (bench/RESULTS.md, "live session cost").

``CheckpointStore`` keeps one DuckDB file open. Every array of every part is stored as its
raw bytes cut into chunks of ``CHUNK_BYTES`` (plus its dtype and shape); a save compares each
array's chunks with those it last wrote and, in one transaction, rewrites only the chunks that
differ, adds new ones and drops those past the end. The record arrays of a session grow at
their end, so a save writes the last chunk or two of each: the work is what changed, not what
the session holds. (Comparing is a byte compare over the state in memory: cheap next to the
write.) A transaction is all or nothing: a process killed during a save leaves the previous
save, which DuckDB restores from its write-ahead log on the next open, exactly as the atomic
rename of a whole file did. The first save of a store writes the whole state into a fresh
file, atomically, as ``save_checkpoint`` does; ``load_checkpoint`` reads both layouts.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from backstop.engine.atomic import replacing
from backstop.engine.checkpoint import Checkpoint
from backstop.errors import BackstopError

STORE_VERSION = 3  # the incremental layout (its own numbers: whole files are CHECKPOINT_VERSION)
CHUNK_BYTES = 1 << 14  # 16 KiB: a grown array rewrites at most this much of its old bytes

_SCHEMA = (
    "CREATE TABLE meta (key VARCHAR, value VARCHAR)",
    "CREATE TABLE fields (part VARCHAR, field VARCHAR, dtype BLOB, shape VARCHAR)",
    "CREATE TABLE chunks (part VARCHAR, field VARCHAR, chunk INTEGER, data BLOB)",
)


class CheckpointStore:
    """One checkpoint file, brought up to date in place by ``save`` (see the module doc)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._chunks: dict[tuple[str, str], np.ndarray] = {}  # each field's bytes in the file
        self._heads: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.written = 0  # array bytes the last save wrote (the rest it left as they were)

    def save(self, checkpoint: Checkpoint) -> Path:
        """Bring the file up to ``checkpoint``: the whole of it on the first save, what
        changed on every later one; errors are one BackstopError naming the path."""
        try:
            if self._con is None:
                self._first(checkpoint)
            else:
                self._update(self._con, checkpoint)
            # the file's time marks every save (its bytes may wait in DuckDB's log)
            self.path.touch()
        except (duckdb.Error, OSError) as exc:
            self.close()  # the next save starts over with a whole write
            cause = " ".join(str(exc).split())
            raise BackstopError(f"{self.path}: checkpoint not written ({cause})") from None
        return self.path

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
        self._con = None
        self._chunks.clear()
        self._heads.clear()

    def _first(self, checkpoint: Checkpoint) -> None:
        """Open the file (a store's own, written whole in one transaction) or create it
        whole and atomically (none yet, or one written by ``save_checkpoint``)."""
        if _is_store(self.path):
            self._con = duckdb.connect(str(self.path))
            try:
                self._update(self._con, checkpoint, whole=True)
            except BaseException:
                self.close()
                raise
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # a log left beside an older file would be replayed against the new one
        self.path.with_name(self.path.name + ".wal").unlink(missing_ok=True)
        with replacing(self.path, checkpoint.run_id) as partial:
            con = duckdb.connect(str(partial))
            try:
                for statement in _SCHEMA:
                    con.execute(statement)
                self._update(con, checkpoint)
                con.execute("CHECKPOINT")
            finally:
                con.close()
        self._con = duckdb.connect(str(self.path))

    def _update(
        self, con: duckdb.DuckDBPyConnection, checkpoint: Checkpoint, whole: bool = False
    ) -> None:
        """One transaction of a few statements, whatever the number of fields: the meta rows,
        the headers that changed, and each array's chunks from its first changed one on
        (``whole``: every field and chunk the file held replaced by this checkpoint's)."""
        heads: list[tuple[str, str, bytes, str]] = []
        cuts: list[tuple[str, str, int]] = []  # (part, field, first chunk to rewrite)
        rows: list[tuple[str, str, int, bytes]] = []
        chunks: dict[tuple[str, str], np.ndarray] = {}
        for part, arrays in checkpoint.parts.items():
            for name, array in arrays.items():
                key = (part, name)
                array = np.ascontiguousarray(array)
                head = self._head(array)
                if whole or self._heads.get(key) != head:
                    heads.append((part, name, *head))
                data = np.frombuffer(array.tobytes(), dtype=np.uint8)
                old = None if whole else self._chunks.get(key)
                first = 0 if old is None else _first_change(old, data)
                if old is None or first < len(data) or len(old) > len(data):
                    k = first // CHUNK_BYTES
                    cuts.append((part, name, k))
                    rows += [
                        (part, name, j, data[j * CHUNK_BYTES : (j + 1) * CHUNK_BYTES].tobytes())
                        for j in range(k, -(-len(data) // CHUNK_BYTES))
                    ]
                chunks[key] = data
        gone = [] if whole else sorted(set(self._chunks) - set(chunks))
        heads_cut = [(p, n) for p, n, *_ in heads] + gone
        cuts += [(p, n, 0) for p, n in gone]
        con.execute("BEGIN TRANSACTION")
        try:
            if whole:
                con.execute("DELETE FROM fields")
                con.execute("DELETE FROM chunks")
            con.execute("DELETE FROM meta")
            meta = _meta(checkpoint)
            con.execute(
                "INSERT INTO meta SELECT * FROM (VALUES "
                + ", ".join("(?, ?)" for _ in meta) + ")",
                [x for kv in meta for x in kv],
            )  # fmt: skip
            if heads_cut and not whole:
                _with(con, "heads_cut", _table(heads_cut, ("part", "field")),
                      "DELETE FROM fields USING heads_cut WHERE fields.part = heads_cut.part "
                      "AND fields.field = heads_cut.field")  # fmt: skip
            if heads:
                _with(con, "new_heads", _table(heads, ("part", "field", "dtype", "shape")),
                      "INSERT INTO fields SELECT * FROM new_heads")  # fmt: skip
            if cuts and not whole:
                _with(con, "cuts", _table(cuts, ("part", "field", "first")),
                      "DELETE FROM chunks USING cuts WHERE chunks.part = cuts.part AND "
                      "chunks.field = cuts.field AND chunks.chunk >= cuts.first")  # fmt: skip
            if rows:
                _with(con, "new_chunks", _table(rows, ("part", "field", "chunk", "data")),
                      "INSERT INTO chunks SELECT * FROM new_chunks")  # fmt: skip
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            self._chunks.clear()  # what the file holds is no longer known: write it all
            self._heads.clear()
            raise
        self._chunks = chunks
        self.written = sum(len(r[3]) for r in rows)
        kept = {} if whole else {k: v for k, v in self._heads.items() if k in chunks}
        self._heads = kept | {(p, n): (d, sh) for p, n, d, sh in heads}

    def _head(self, array: np.ndarray) -> tuple[bytes, str]:
        return _dtype_bytes(array.dtype), json.dumps(list(array.shape))


def _first_change(old: np.ndarray, new: np.ndarray) -> int:
    """The first byte where ``new`` differs from ``old`` (``len(new)`` when it is ``old``
    or ``old`` grown at its end): one vectorized compare, no copies of the chunks."""
    m = min(len(old), len(new))
    differ = np.flatnonzero(old[:m] != new[:m])
    return int(differ[0]) if differ.size else (m if len(new) > m else len(new))


def _table(rows: list[tuple[Any, ...]], names: tuple[str, ...]) -> pa.Table:
    columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    types = {"chunk": pa.int32(), "first": pa.int32(), "data": pa.binary(), "dtype": pa.binary()}
    return pa.table(
        {
            n: pa.array(list(c), type=types.get(n, pa.string()))
            for n, c in zip(names, columns, strict=True)
        }
    )


def _with(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table, sql: str) -> None:
    con.register(name, table)
    try:
        con.execute(sql)
    finally:
        con.unregister(name)


def _is_store(path: Path) -> bool:
    """Whether ``path`` is a checkpoint file a ``CheckpointStore`` wrote."""
    if not path.exists():
        return False
    try:
        con = duckdb.connect(str(path))
        try:
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        finally:
            con.close()
    except duckdb.Error:
        return False
    return meta.get("version") == str(STORE_VERSION)


def _meta(checkpoint: Checkpoint) -> list[tuple[str, str]]:
    meta = [("version", str(STORE_VERSION)), ("run_id", checkpoint.run_id)]
    return meta + [(f"counter.{k}", str(int(v))) for k, v in checkpoint.counters.items()]


@functools.lru_cache(maxsize=256)
def _dtype_bytes(dtype: np.dtype) -> bytes:
    """The dtype as the header of an empty .npy (structured and text dtypes included)."""
    buf = io.BytesIO()
    np.save(buf, np.zeros(0, dtype=dtype), allow_pickle=False)
    return buf.getvalue()


def read_store(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, dict[str, np.ndarray]]:
    """The parts of a checkpoint file written by ``CheckpointStore`` (an open connection)."""
    fields = con.execute("SELECT part, field, dtype, shape FROM fields").fetchall()
    rows = con.execute(
        "SELECT part, field, chunk, data FROM chunks ORDER BY part, field, chunk"
    ).fetchall()
    data: dict[tuple[str, str], list[bytes]] = {}
    for part, name, k, blob in rows:
        got = data.setdefault((part, name), [])
        if k != len(got):
            raise BackstopError(f"{path}: checkpoint field {part}.{name} lacks chunk {len(got)}")
        got.append(bytes(blob))
    parts: dict[str, dict[str, np.ndarray]] = {}
    for part, name, dtype, shape in fields:
        kind = np.load(io.BytesIO(bytes(dtype)), allow_pickle=False).dtype
        raw = b"".join(data.get((part, name), []))
        array = np.frombuffer(raw, dtype=kind).reshape(json.loads(shape)).copy()
        parts.setdefault(part, {})[name] = array
    return parts


def parts_equal(
    a: Mapping[str, Mapping[str, np.ndarray]], b: Mapping[str, Mapping[str, np.ndarray]]
) -> bool:
    """Whether two checkpoints' parts hold the same arrays (dtype, shape and bytes)."""
    if sorted(a) != sorted(b):
        return False
    for part in a:
        if sorted(a[part]) != sorted(b[part]):
            return False
        for name, x in a[part].items():
            y = b[part][name]
            if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                return False
    return True
