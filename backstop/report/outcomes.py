"""One outcome record per decision cycle, for whoever tunes the learning loop's thresholds.

Seed 001's learning loop "records trade outcomes" and attributes each to a category. Here every
entry signal's cycle (``trade_cycle_id``) is one row: the decision's context (time, strategy,
symbol, side, conviction, price, stop, target, risk at the stop, equity and exposure when it
was decided), what the guard said (approved, reason codes, quantity), what came of it (the
entry quantity filled, the net P&L of its closed round trips, how the last one exited, the
P&L in R: net P&L over the risk at the stop) and one attribution category:

- ``REFUSED``: the guard refused the entry (any reason but a quarantine's shadow trade);
- ``SHADOW``: a quarantined strategy's entry, recorded as a shadow trade, never sent;
- ``NOT_FILLED``: approved, but no entry fill came (cancelled, expired, run ended);
- ``OPEN``: filled, and not closed when the run ended;
- ``WIN`` / ``LOSS`` / ``SCRATCH``: closed with a net P&L above, below or at zero.

The seed names ten categories (A0-A9) without defining them; these are the ones the records
can tell apart without guessing. It reads the verdicts, fills and trades tables of a result or
of a journal (the columns are the same).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from backstop.engine.journal import read_table

CATEGORIES = ("REFUSED", "SHADOW", "NOT_FILLED", "OPEN", "WIN", "LOSS", "SCRATCH")
_CONTEXT = (
    "trade_cycle_id",
    "ts",
    "strategy_id",
    "symbol",
    "side",
    "conviction",
    "price",
    "stop_price",
    "target_price",
    "risk",
    "equity",
    "exposure",
    "approved",
    "reason_codes",
    "qty",
)


def cycle_outcomes(
    verdicts: pl.DataFrame, fills: pl.DataFrame, trades: pl.DataFrame
) -> pl.DataFrame:
    """Per entry signal's cycle, in decision order: its context, verdict, result and
    category (see the module doc)."""
    entries = verdicts.filter(pl.col("intent") == "ENTRY").select(_CONTEXT)
    filled = (
        fills.filter(pl.col("role") == "ENTRY")
        .group_by("trade_cycle_id")
        .agg(pl.col("qty").sum().alias("filled_qty"))
    )
    closed = (
        trades.sort("trade_id")
        .group_by("trade_cycle_id")
        .agg(
            pl.col("net_pnl").sum().alias("net_pnl"),
            pl.col("exit_reason").last().alias("exit_reason"),
        )
    )
    out = (
        entries.with_row_index("_order")
        .join(filled, on="trade_cycle_id", how="left")
        .join(closed, on="trade_cycle_id", how="left")
        .sort("_order")
        .drop("_order")
        .with_columns(pl.col("filled_qty").fill_null(0.0))
    )
    shadow = pl.col("reason_codes").list.contains("SHADOW_TRADE")
    category = (
        pl.when(shadow)
        .then(pl.lit("SHADOW"))
        .when(~pl.col("approved"))
        .then(pl.lit("REFUSED"))
        .when(pl.col("filled_qty") == 0)
        .then(pl.lit("NOT_FILLED"))
        .when(pl.col("net_pnl").is_null())
        .then(pl.lit("OPEN"))
        .when(pl.col("net_pnl") > 0)
        .then(pl.lit("WIN"))
        .when(pl.col("net_pnl") < 0)
        .then(pl.lit("LOSS"))
        .otherwise(pl.lit("SCRATCH"))
    )
    r = pl.when(pl.col("risk") > 0).then(pl.col("net_pnl") / pl.col("risk"))
    return out.with_columns(r.alias("r_multiple"), category.alias("category"))


def journal_cycle_outcomes(path: str | Path) -> pl.DataFrame:
    """``cycle_outcomes`` of a journal (its file or run folder)."""
    tables = (read_table(path, name) for name in ("verdicts", "fills", "trades"))
    return cycle_outcomes(*tables)
