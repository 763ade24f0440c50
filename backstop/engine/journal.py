"""The run journal: one embedded DuckDB file per run, queryable with SQL afterwards.

Tables (schema documented in JOURNAL.md): ``run`` (one row: id, label, config, profile),
``events`` (the whole timeline, ordered by ts, priority, seq), ``verdicts``, ``orders``,
``fills``, ``trades``, ``equity`` and ``guard`` (guardrail state changes). Each table is
written once, at the end of a run, from Arrow.

Determinism: the same inputs give the same rows in the same order; ``journal_digest`` hashes
every table's ordered content so two runs can be compared without depending on DuckDB's file
layout.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from backstop.errors import BackstopError

if TYPE_CHECKING:
    from backstop.engine.result import BacktestResult

JOURNAL_SCHEMA_VERSION = 2
TABLES = ("run", "events", "verdicts", "orders", "fills", "trades", "equity", "guard")

# Priority classes of the events timeline within one timestamp.
_PRIORITY = {
    "FILL": 0,
    "ORDER_FILLED": 1,
    "ORDER_CANCELED": 1,
    "ORDER_EXPIRED": 1,
    "ORDER_REJECTED": 1,
    "TRADE_CLOSED": 2,
    "GUARD": 3,
    "SIGNAL": 4,
    "ORDER_SUBMITTED": 5,
}


def events_frame(result: BacktestResult) -> pl.DataFrame:
    """The run's timeline from its records: signals, orders, fills, closed round trips.

    Structured columns rather than formatted text: they are cheap to build and queryable, and
    the plain-English journal is rendered from them.
    """
    cols = {
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

    def shaped(frame: pl.DataFrame, **exprs: pl.Expr) -> pl.DataFrame:
        """Select the timeline columns, taking given expressions, frame columns, else nulls."""
        out = []
        for name, dtype in cols.items():
            if name in exprs:
                out.append(exprs[name].cast(dtype).alias(name))
            elif name in frame.columns:
                out.append(pl.col(name).cast(dtype))
            else:
                out.append(pl.lit(None, dtype=dtype).alias(name))
        return frame.select(out)

    v, o, f, t = result.verdicts, result.orders, result.fills, result.trades
    gd = result.guard_events
    parts = [
        shaped(
            v,
            kind=pl.when(pl.col("source") == "engine")
            .then(pl.lit("EXIT_RULE"))
            .otherwise(pl.lit("SIGNAL")),
            role=pl.col("intent"),
        ),
        shaped(
            gd,
            kind=pl.lit("GUARD"),
            role=pl.col("kind"),
            reason_codes=pl.when(pl.col("kill_cause").is_not_null())
            .then(pl.concat_list(pl.col("kill_cause")))
            .otherwise(pl.lit(None)),
            price=pl.col("value"),
        ),
        shaped(
            o,
            ts=pl.col("created_ts"),
            kind=pl.lit("ORDER_SUBMITTED"),
            price=pl.coalesce("limit_price", "stop_price"),
            reason_codes=pl.lit(None),
        ),
        shaped(
            o.filter(pl.col("done_ts").is_not_null()),
            ts=pl.col("done_ts"),
            kind=pl.concat_str(pl.lit("ORDER_"), "status"),
            qty=pl.col("filled_qty"),
            price=pl.col("avg_fill_price"),
        ),
        shaped(f, kind=pl.lit("FILL")),
        shaped(
            t,
            ts=pl.col("exit_ts"),
            kind=pl.lit("TRADE_CLOSED"),
            role=pl.col("exit_reason"),
            side=pl.col("direction"),
            price=pl.col("exit_price"),
            pnl=pl.col("net_pnl"),
        ),
    ]
    timeline = pl.concat(parts, how="vertical").with_row_index("_src")
    return (
        timeline.with_columns(
            priority=pl.col("kind").replace_strict(_PRIORITY, default=9, return_dtype=pl.Int8)
        )
        .sort(["ts", "priority", "_src"], maintain_order=True)
        .drop("_src")
        .with_row_index("seq")
        .select("ts", "priority", "seq", *list(cols)[1:])
    )


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
            "profile_settings": [json.dumps(dict(result.profile.settings), sort_keys=True)],
            "profile_hash": [result.profile.content_hash()],
            "bars": [result.arrays.n],
            "symbols": [",".join(result.arrays.symbols)],
        }
    )


def write_journal(result: BacktestResult, path: str | Path) -> Path:
    """Write every table of ``result`` to a new DuckDB file at ``path`` (replacing it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    builders = {
        "run": run_frame,
        "events": events_frame,
        "verdicts": lambda r: r.verdicts,
        "orders": lambda r: r.orders,
        "fills": lambda r: r.fills,
        "trades": lambda r: r.trades,
        "equity": lambda r: r.equity,
        "guard": lambda r: r.guard_events,
    }
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise BackstopError(f"{path}: cannot create the journal: {exc}") from None
    try:
        # one table at a time, so only one table's Arrow copy is alive at once
        for name in TABLES:
            arrow = builders[name](result).to_arrow()
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM arrow")
            del arrow
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return path


def read_table(path: str | Path, table: str) -> pl.DataFrame:
    """Read one journal table back as a polars frame."""
    if table not in TABLES:
        raise BackstopError(f"unknown journal table {table!r} (tables: {', '.join(TABLES)})")
    path = Path(path)
    if not path.exists():
        raise BackstopError(f"{path}: no such journal")
    con = duckdb.connect(str(path), read_only=True)
    try:
        return pl.from_arrow(con.sql(f"SELECT * FROM {table}").to_arrow_table())
    finally:
        con.close()


def journal_digest(path: str | Path) -> str:
    """Hash of every table's rows in stored order: equal digests, identical journals."""
    h = hashlib.sha256()
    con = duckdb.connect(str(path), read_only=True)
    try:
        for table in TABLES:
            frame = pl.from_arrow(con.sql(f"SELECT * FROM {table}").to_arrow_table())
            frame = frame.with_columns(
                pl.col(c).list.join("|") for c, t in frame.schema.items() if t == pl.List
            )
            h.update(table.encode())
            h.update(frame.write_csv().encode())
    finally:
        con.close()
    return h.hexdigest()
