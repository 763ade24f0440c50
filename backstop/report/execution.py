"""Execution quality per strategy (seed 001's EQS), after a run: entry fills against the price
their entries were decided at.

The same measure the EQS gate (``engine/core/execution.py``) scores while a run goes on, here
as a plain average and the worst fill over the whole run, from the verdicts and fills tables
(a result's or a journal's: the columns are the same).
"""

from __future__ import annotations

import polars as pl

EQS_SCHEMA = {
    "strategy_id": pl.String,
    "fills": pl.UInt32,
    "mean_slippage_bps": pl.Float64,
    "worst_slippage_bps": pl.Float64,
}


def execution_quality(verdicts: pl.DataFrame, fills: pl.DataFrame) -> pl.DataFrame:
    """Per strategy: entry fills, their mean and worst adverse slippage in bps of the decision
    price (positive: the fill was worse than the price decided on), sorted by strategy."""
    decided = verdicts.filter(
        pl.col("approved") & (pl.col("intent") == "ENTRY") & (pl.col("order_id") >= 0)
    ).select("order_id", pl.col("price").alias("decided"))
    entry_fills = fills.filter(pl.col("role") == "ENTRY")
    if entry_fills.height == 0 or decided.height == 0:
        return pl.DataFrame(schema=EQS_SCHEMA)
    sign = pl.when(pl.col("side") == "BUY").then(1.0).otherwise(-1.0)
    slip = (pl.col("price") - pl.col("decided")) / pl.col("decided") * 1e4 * sign
    return (
        entry_fills.join(decided, on="order_id", how="inner")
        .filter(pl.col("decided") > 0)
        .with_columns(slip.alias("bps"))
        .group_by("strategy_id")
        .agg(
            pl.len().cast(pl.UInt32).alias("fills"),
            pl.col("bps").mean().alias("mean_slippage_bps"),
            pl.col("bps").max().alias("worst_slippage_bps"),
        )
        .sort("strategy_id")
    )
