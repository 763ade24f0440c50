"""The journal's ``reconcile`` table: a live run's reconciles with its broker (JOURNAL.md).

The live runner fills it (``backstop.runners.live.reconcile``: one row per finding, as dicts
of these columns); a backtest writes it empty. Apart from ``journal.py`` so both sides share
one schema without the engine knowing the runner.
"""

from __future__ import annotations

from typing import Any

import polars as pl

# A live run's reconciles with its broker, one row per finding (JOURNAL.md, "reconcile");
# empty for a backtest.
RECONCILE_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "ts": pl.Int64,
    "reconcile": pl.Int64,
    "kind": pl.String,
    "symbol": pl.String,
    "client_order_id": pl.String,
    "exec_id": pl.String,
    "trade_cycle_id": pl.String,
    "side": pl.String,
    "qty": pl.Float64,
    "price": pl.Float64,
    "fill_ts": pl.Int64,
    "pnl": pl.Float64,
    "mirror_qty": pl.Float64,
    "broker_qty": pl.Float64,
    "action": pl.String,
}


def reconcile_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A live run's reconcile rows (dicts of ``RECONCILE_SCHEMA``'s columns) as the table."""
    columns = {name: [r.get(name) for r in rows] for name in RECONCILE_SCHEMA}
    return pl.DataFrame(columns, schema=RECONCILE_SCHEMA)
