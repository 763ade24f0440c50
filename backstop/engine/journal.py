"""The run journal: one embedded DuckDB file per run, queryable with SQL afterwards.

Tables (schema documented in JOURNAL.md): ``run`` (one row: id, label, config), ``events``
(the whole timeline, ordered by ts, priority, seq), ``verdicts``, ``orders``, ``fills``,
``trades`` and ``equity``. Each table is written once, at the end of a run, from Arrow.

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

JOURNAL_SCHEMA_VERSION = 1
TABLES = ("run", "events", "verdicts", "orders", "fills", "trades", "equity")

# Priority classes of the events timeline within one timestamp.
_PRIORITY = {
    "FILL": 0,
    "ORDER_FILLED": 1,
    "ORDER_CANCELED": 1,
    "ORDER_EXPIRED": 1,
    "ORDER_REJECTED": 1,
    "TRADE_CLOSED": 2,
    "SIGNAL": 3,
    "ORDER_SUBMITTED": 4,
}


def events_frame(result: BacktestResult) -> pl.DataFrame:
    """The run's timeline from its records: signals, orders, fills, closed round trips."""
    cols = ["ts", "kind", "trade_cycle_id", "strategy_id", "symbol", "order_id", "detail"]
    v = result.verdicts
    signals = v.select(
        "ts",
        pl.lit("SIGNAL").alias("kind"),
        "trade_cycle_id",
        "strategy_id",
        "symbol",
        pl.col("order_id").cast(pl.Int64),
        pl.format(
            "{} {} approved={} reasons={}",
            "intent",
            "side",
            "approved",
            pl.col("reason_codes").list.join(","),
        ).alias("detail"),
    )
    o = result.orders
    submitted = o.select(
        pl.col("created_ts").alias("ts"),
        pl.lit("ORDER_SUBMITTED").alias("kind"),
        "trade_cycle_id",
        "strategy_id",
        "symbol",
        "order_id",
        pl.format(
            "{} {} {} {} qty={}", "client_order_id", "role", "side", "order_type", "qty"
        ).alias("detail"),
    )
    done = o.filter(pl.col("done_ts").is_not_null()).select(
        pl.col("done_ts").alias("ts"),
        pl.concat_str(pl.lit("ORDER_"), "status").alias("kind"),
        "trade_cycle_id",
        "strategy_id",
        "symbol",
        "order_id",
        pl.format("{} reasons={}", "client_order_id", pl.col("reason_codes").list.join(",")).alias(
            "detail"
        ),
    )
    f = result.fills
    fills = f.select(
        "ts",
        pl.lit("FILL").alias("kind"),
        "trade_cycle_id",
        "strategy_id",
        "symbol",
        "order_id",
        pl.format("{} {} {} @ {} fee={}", "role", "side", "qty", "price", "fee").alias("detail"),
    )
    t = result.trades
    trades = t.select(
        pl.col("exit_ts").alias("ts"),
        pl.lit("TRADE_CLOSED").alias("kind"),
        "trade_cycle_id",
        "strategy_id",
        "symbol",
        pl.lit(None, dtype=pl.Int64).alias("order_id"),
        pl.format("{} {} pnl={} exit={}", "direction", "qty", "net_pnl", "exit_reason").alias(
            "detail"
        ),
    )
    parts = [p.select(cols) for p in (signals, submitted, done, fills, trades)]
    timeline = pl.concat(parts, how="vertical_relaxed").with_row_index("_src")
    return (
        timeline.with_columns(
            priority=pl.col("kind").replace_strict(_PRIORITY, default=9, return_dtype=pl.Int8)
        )
        .sort(["ts", "priority", "_src"], maintain_order=True)
        .drop("_src")
        .with_row_index("seq")
        .select("ts", "priority", "seq", *cols[1:])
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
