"""The run journal: one embedded DuckDB file per run, queryable with SQL afterwards.

Tables (schema documented in JOURNAL.md): ``run`` (one row: id, label, config, profile),
``events`` (the whole timeline, ordered by ts, priority, seq), ``verdicts``, ``orders``,
``fills``, ``trades``, ``equity``, ``guard`` (guardrail state changes) and ``reconcile``
(a live run's reconciles with its broker, ``journal_reconcile.py``). Each table is written
once, at the end of a run, from Arrow batches (``write_journal`` says how its memory stays
bounded).

Determinism: the same inputs give the same rows in the same order; ``journal_digest`` hashes
every table's ordered content so two runs can be compared without depending on DuckDB's file
layout.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from backstop.engine.atomic import replacing
from backstop.engine.journal_reconcile import reconcile_frame
from backstop.engine.journal_writer import JournalWriter
from backstop.errors import BackstopError

if TYPE_CHECKING:
    from backstop.engine.result import BacktestResult

JOURNAL_SCHEMA_VERSION = 3
TABLES = (
    "run", "events", "verdicts", "orders", "fills", "trades", "equity", "guard", "reconcile",
)  # fmt: skip


# Priority classes of the events timeline within one timestamp.
_PRIORITY = {
    "FILL": 0,
    "ORDER_FILLED": 1,
    "ORDER_CANCELED": 1,
    "ORDER_EXPIRED": 1,
    "ORDER_REJECTED": 1,
    "TRADE_CLOSED": 2,
    "GUARD": 3,
    "RECONCILE": 3,
    "SIGNAL": 4,
    "ORDER_SUBMITTED": 5,
}


# The timeline's columns after (ts, priority, seq), in order.
_TIMELINE: dict[str, pl.DataType | type[pl.DataType]] = {
    "ts": pl.Int64,
    "kind": pl.String,
    "trade_cycle_id": pl.String,
    "strategy_id": pl.String,
    "symbol": pl.String,
    "order_id": pl.Int64,
    "client_order_id": pl.String,
    "role": pl.String,
    "side": pl.String,
    "qty": pl.Float64,
    "price": pl.Float64,
    "approved": pl.Boolean,
    "reason_codes": pl.List(pl.String),
    "pnl": pl.Float64,
}

# Which result frame feeds which parts of the timeline; a part's number breaks ties of
# (ts, priority) between parts, its row index ties within one.
_SOURCES = ("verdicts", "guard_events", "orders", "fills", "trades", "reconcile")


def _shaped(frame: pl.DataFrame, part: int, **exprs: pl.Expr) -> pl.DataFrame:
    """One part of the timeline: its columns (given expressions, frame columns, else nulls),
    the priority of each row's kind, and the keys that order it."""
    out = []
    for name, dtype in _TIMELINE.items():
        if name in exprs:
            out.append(exprs[name].cast(dtype).alias(name))
        elif name in frame.columns:
            out.append(pl.col(name).cast(dtype))
        else:
            out.append(pl.lit(None, dtype=dtype).alias(name))
    return (
        frame.select(out)
        .with_columns(
            priority=pl.col("kind").replace_strict(_PRIORITY, default=9, return_dtype=pl.Int8),
            part=pl.lit(part, dtype=pl.Int8),
        )
        .with_row_index("idx")
    )


def timeline_parts(source: str, frame: pl.DataFrame) -> Iterator[pl.DataFrame]:
    """The timeline rows that result frame ``source`` (one of ``_SOURCES``) contributes, one
    part at a time (orders give two: submitted, and done)."""
    if source == "verdicts":
        kind = pl.when(pl.col("source") == "engine").then(pl.lit("EXIT_RULE"))
        yield _shaped(frame, 0, kind=kind.otherwise(pl.lit("SIGNAL")), role=pl.col("intent"))
    elif source == "guard_events":
        causes = pl.when(pl.col("kill_cause").is_not_null()).then(
            pl.concat_list(pl.col("kill_cause"))
        )
        yield _shaped(
            frame,
            1,
            kind=pl.lit("GUARD"),
            role=pl.col("kind"),
            reason_codes=causes.otherwise(pl.lit(None)),
            price=pl.col("value"),
        )
    elif source == "orders":
        yield _shaped(
            frame,
            2,
            ts=pl.col("created_ts"),
            kind=pl.lit("ORDER_SUBMITTED"),
            price=pl.coalesce("limit_price", "stop_price"),
            reason_codes=pl.lit(None),
        )
        yield _shaped(
            frame.filter(pl.col("done_ts").is_not_null()),
            3,
            ts=pl.col("done_ts"),
            kind=pl.concat_str(pl.lit("ORDER_"), "status"),
            qty=pl.col("filled_qty"),
            price=pl.col("avg_fill_price"),
        )
    elif source == "fills":
        yield _shaped(frame, 4, kind=pl.lit("FILL"))
    elif source == "trades":
        yield _shaped(
            frame,
            5,
            ts=pl.col("exit_ts"),
            kind=pl.lit("TRADE_CLOSED"),
            role=pl.col("exit_reason"),
            side=pl.col("direction"),
            price=pl.col("exit_price"),
            pnl=pl.col("net_pnl"),
        )
    elif source == "reconcile":
        yield _shaped(
            frame.rename({"kind": "finding"}),
            6,
            kind=pl.lit("RECONCILE"),
            role=pl.col("finding"),
            reason_codes=pl.lit(None),
        )
    else:
        raise ValueError(f"no timeline rows come from {source!r}")


def run_frame(result: BacktestResult) -> pl.DataFrame:
    """One row describing the run: ids, inputs and every config option."""
    return pl.DataFrame(
        {
            "run_id": [result.run_id],
            "schema_version": [JOURNAL_SCHEMA_VERSION],
            "label": [result.label],
            "strategy": [result.strategy_name],
            "params": [json.dumps(result.params, sort_keys=True)],
            "config": [json.dumps(asdict(result.config), sort_keys=True)],
            "config_hash": [result.config.content_hash()],
            "profile": [result.profile.name],
            "profile_settings": [json.dumps(result.profile.all_settings(), sort_keys=True)],
            "profile_hash": [result.profile.content_hash()],
            "bars": [result.arrays.n],
            "symbols": [",".join(result.arrays.symbols)],
            # what the tearsheet needs and the other tables cannot give: the bars' buy & hold
            # return and the closed trades' net P&L under each intrabar ordering
            "buy_hold_return": [result.buy_hold_return],
            "pnl_by_ordering": [json.dumps(result.ambiguity()["pnl_by_ordering"])],
        }
    )


# DuckDB's memory for the journal write: past it, the timeline's sort spills to a temporary
# folder beside the journal instead of growing the process. 256MB made DuckDB evict while
# ingesting W's tables (2.5 s against 1.5 s at 512MB, for 20 MB more peak memory).
JOURNAL_MEMORY_LIMIT = "512MB"
# Timelines of up to this many rows (W: 1.8M, ~250 MB) are ordered in memory by polars and
# written once (W: 2.4 s against 4.8 s staged and ordered in DuckDB); longer ones are staged
# batch by batch and ordered by DuckDB within JOURNAL_MEMORY_LIMIT, so memory stays bounded.
TIMELINE_MEMORY_ROWS = 3_000_000
# Records written at a time (one Arrow batch): two DuckDB row groups of 122,880, so no insert
# leaves a partial one behind (W: 4.1 s -> 3.6 s against batches of 100,000).
BATCH_ROWS = 245_760


def write_journal(result: BacktestResult, path: str | Path, *, force: bool = False) -> Path:
    """Write every table of ``result`` to a DuckDB file at ``path``, atomically.

    The tables go to a temporary file beside ``path``, which is renamed into place only once
    it is complete and on disk: a failed write (a full disk, a killed process) leaves an
    earlier journal at ``path`` byte for byte as it was, and raises a ``BackstopError``
    naming the path and the cause. An existing journal of the same run is replaced (same
    inputs, same run id); one of a different run, or a file that is not a journal, is kept
    and refused unless ``force``.

    Memory stays bounded whatever the run's size: the record tables go in batches of
    ``BATCH_ROWS`` records (built from the records, not from frames the result may cache);
    a timeline of up to ``TIMELINE_MEMORY_ROWS`` rows is ordered in memory by polars, a
    longer one is staged batch by batch in DuckDB, which orders it within
    ``JOURNAL_MEMORY_LIMIT``, spilling past it.
    """
    path = Path(path)
    if path.is_dir():
        raise BackstopError(f"{path}: is a directory, not a journal file")
    if path.exists() and not force:
        held = journal_run_id(path, missing_ok=True)
        if held != result.run_id:
            what = f"holds run {held}" if held else "is not a backstop journal"
            raise BackstopError(
                f"{path}: {what}, not this run ({result.run_id}); pass --force (force=True) "
                "to replace it, or write the journal elsewhere"
            )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackstopError(f"{path.parent}: cannot create the journal folder: {exc}") from None
    try:
        with replacing(path, result.run_id) as partial:
            _write_tables(result, partial)
    except (duckdb.Error, OSError) as exc:
        kept = "; the earlier journal there is unchanged" if path.exists() else ""
        cause = " ".join(str(exc).split())
        raise BackstopError(f"{path}: journal not written ({cause}){kept}") from None
    return path


def _write_tables(result: BacktestResult, path: Path) -> None:
    con = duckdb.connect(
        str(path),
        config={
            "memory_limit": JOURNAL_MEMORY_LIMIT,
            "temp_directory": str(path.with_name(path.name + ".tmp")),
        },
    )
    # DuckDB draws a progress bar on stdout for a statement past 2 s (W's tables on a loaded
    # machine): it broke ``backtest --json``'s one JSON object. Printing is turned off, not
    # the bar; and only where DuckDB lets it: inside Jupyter without ipywidgets, changing
    # either setting fails, and the setting is left as it is
    with contextlib.suppress(duckdb.Error):
        con.execute("SET enable_progress_bar_print = false")
    rec = result.records
    batched = (
        ("verdicts", "verdicts", rec.verdicts, result.verdicts_of),
        ("orders", "orders", rec.orders, result.orders_of),
        ("fills", "fills", rec.fills, result.fills_of),
        ("trades", "trades", rec.trades, result.trades_of),
    )
    try:
        # one transaction: DuckDB then writes large inserts straight to the file, not the WAL
        con.execute("BEGIN TRANSACTION")
        # the inserts run on the writer's thread while the next frames are built here
        with JournalWriter(con) as writer:
            writer.insert("run", run_frame(result), create=True)
            rows = len(rec.verdicts) + len(rec.guard) + 2 * len(rec.orders)
            rows += len(rec.fills) + len(rec.trades) + len(result.reconcile_rows)
            timeline = _Timeline(writer, in_memory=rows <= TIMELINE_MEMORY_ROWS)
            for source, table, records, build in batched:
                for start in range(0, max(len(records), 1), BATCH_ROWS):
                    frame = build(records[start : start + BATCH_ROWS])
                    writer.insert(table, frame, create=start == 0)
                    timeline.stage(source, frame)
                    del frame
            writer.insert("guard", result.guard_events_ns, create=True)
            timeline.stage("guard_events", result.guard_events_ns)
            writer.insert("equity", result.equity_ns, create=True)
            reconcile = reconcile_frame(result.reconcile_rows)
            writer.insert("reconcile", reconcile, create=True)
            timeline.stage("reconcile", reconcile)
            timeline.write()
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    finally:
        con.close()


class _Timeline:
    """The timeline's rows, gathered batch by batch, each part's rows numbered on from its
    earlier batches (the numbers order ties, as in one frame), then ordered and written as
    the ``events`` table: in memory by polars, or (``in_memory=False``) staged in a
    temporary DuckDB table and ordered there, spilling past ``JOURNAL_MEMORY_LIMIT``."""

    def __init__(self, writer: JournalWriter, *, in_memory: bool) -> None:
        self.writer = writer
        self.in_memory = in_memory
        self.rows: dict[int, int] = {}
        self.parts: list[pl.DataFrame] = []
        self.created = False

    def stage(self, source: str, frame: pl.DataFrame) -> None:
        for part in timeline_parts(source, frame):
            if part.is_empty() and (self.created or self.parts):
                continue
            number = int(part.get_column("part")[0]) if part.height else -1
            offset = self.rows.get(number, 0)
            self.rows[number] = offset + part.height
            part = part.with_columns(pl.col("idx") + offset)
            if self.in_memory:
                self.parts.append(part)
                continue
            self.writer.insert("_timeline", part, create=not self.created, temporary=True)
            self.created = True

    def write(self) -> None:
        """Create the ``events`` table: every staged row ordered by (ts, priority, part, idx),
        numbered by ``seq`` in that order."""
        if self.in_memory:
            # (priority, part, idx) packed into one int64 (idx < 2^32, part < 2^8): a two-key
            # sort, the same order as the four keys (W: 0.35 s -> 0.2 s)
            tie = pl.col("priority").cast(pl.Int64) * (1 << 40)
            tie += pl.col("part").cast(pl.Int64) * (1 << 32) + pl.col("idx").cast(pl.Int64)
            # one chunk per column first: sorting chunked columns gathers from every chunk
            # (W: 0.31 s -> 0.18 s)
            events = (
                pl.concat(self.parts, how="vertical", rechunk=True)
                .sort(pl.col("ts"), tie)
                .with_row_index("seq")
                .select("ts", "priority", pl.col("seq").cast(pl.UInt32), *list(_TIMELINE)[1:])
            )
            self.parts.clear()
            self.writer.insert("events", events, create=True)
            return
        # number the rows by sorting the narrow keys only, then lay the rows out by number
        # (W: 2.3 s within the memory limit, against 3.8 s for a window over whole rows)
        cols = ", ".join(f'_timeline."{c}"' for c in list(_TIMELINE)[1:])
        self.writer.execute(
            "CREATE TABLE events AS WITH k AS (SELECT part, idx, CAST(row_number() OVER "
            "(ORDER BY ts, priority, part, idx) - 1 AS UINTEGER) AS seq FROM _timeline) "
            f"SELECT _timeline.ts, _timeline.priority, k.seq, {cols} "
            "FROM _timeline JOIN k USING (part, idx) ORDER BY k.seq"
        )
        self.writer.execute("DROP TABLE _timeline")


def _connect_journal(path: Path) -> duckdb.DuckDBPyConnection:
    """Open a journal read-only; a missing file or one that is not DuckDB is a BackstopError."""
    if path.is_dir():
        path = path / "journal.duckdb"
    if not path.exists():
        raise BackstopError(f"{path}: no such journal")
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        cause = " ".join(str(exc).split())
        raise BackstopError(f"{path}: not a backstop journal ({cause})") from None


def _select(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> pl.DataFrame:
    try:
        frame = pl.from_arrow(con.sql(f"SELECT * FROM {table}").to_arrow_table())
    except duckdb.CatalogException:
        raise BackstopError(f"{path}: not a backstop journal (no table {table!r})") from None
    if not isinstance(frame, pl.DataFrame):  # an Arrow table always gives a frame
        raise BackstopError(f"{path}: table {table!r} did not read as a table")
    return frame


def journal_run_id(path: str | Path, *, missing_ok: bool = False) -> str | None:
    """The run id a journal holds; None (with ``missing_ok``) when it is not a journal."""
    path = Path(path)
    try:
        con = _connect_journal(path)
    except BackstopError:
        if missing_ok:
            return None
        raise
    try:
        run = _select(con, path, "run")
    except BackstopError:
        if missing_ok:
            return None
        raise
    finally:
        con.close()
    if run.height != 1 or "run_id" not in run.columns:
        if missing_ok:
            return None
        raise BackstopError(f"{path}: not a backstop journal (its run table is not one row)")
    return str(run.get_column("run_id")[0])


def read_table(path: str | Path, table: str) -> pl.DataFrame:
    """Read one journal table back as a polars frame (``path``: the file or its run folder)."""
    if table not in TABLES:
        raise BackstopError(f"unknown journal table {table!r} (tables: {', '.join(TABLES)})")
    path = Path(path)
    con = _connect_journal(path)
    try:
        return _select(con, path, table)
    finally:
        con.close()


def journal_digest(path: str | Path) -> str:
    """Hash of every table's rows in stored order: equal digests, identical journals."""
    h = hashlib.sha256()
    path = Path(path)
    con = _connect_journal(path)
    try:
        for table in TABLES:
            frame = _select(con, path, table)
            frame = frame.with_columns(
                pl.col(c).list.join("|") for c, t in frame.schema.items() if t == pl.List
            )
            h.update(table.encode())
            h.update(frame.write_csv().encode())
    finally:
        con.close()
    return h.hexdigest()
