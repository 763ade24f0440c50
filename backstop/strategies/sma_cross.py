"""SMA-cross bracket: the shared benchmark workload (bench/WORKLOAD.md) as a strategy.

Long only. When SMA(fast) crosses above SMA(slow) at a bar's close, ask for a long entry with
an OCO bracket (stop ``stop_pct`` below and target ``target_pct`` above the fill price); when
it crosses below, ask for an exit. The strategy does not track positions: an entry while long
is refused by the pipeline (DUPLICATE_POSITION) and an exit while flat is refused
(EXIT_NO_EXPOSURE), and both refusals are journaled.

A cross up at bar t: fast[t] > slow[t] and fast[t-1] <= slow[t-1]; a cross down mirrors it.
"""

from __future__ import annotations

import polars as pl

from backstop.strategies.base import Param, Strategy, register


def sma_cross_intents(
    bars: pl.DataFrame,
    fast: int = 10,
    slow: int = 50,
    stop_pct: float = 0.01,
    target_pct: float = 0.02,
    qty: float = 100,
) -> pl.DataFrame:
    """Intent rows at every SMA cross of every symbol (vectorised, per symbol)."""
    by = "symbol"
    f = pl.col("close").rolling_mean(fast).over(by)
    s = pl.col("close").rolling_mean(slow).over(by)
    crosses = (
        bars.lazy()
        .select("ts", "symbol", "close")
        .with_columns(f=f, s=s)
        .with_columns(pf=pl.col("f").shift(1).over(by), ps=pl.col("s").shift(1).over(by))
        .with_columns(
            up=(pl.col("f") > pl.col("s")) & (pl.col("pf") <= pl.col("ps")),
            down=(pl.col("f") < pl.col("s")) & (pl.col("pf") >= pl.col("ps")),
        )
        .filter(pl.col("up") | pl.col("down"))
        .select(
            "ts",
            "symbol",
            side=pl.when(pl.col("up")).then(1).otherwise(-1).cast(pl.Int8),
            intent=pl.when(pl.col("up")).then(0).otherwise(1).cast(pl.Int8),
            qty=pl.when(pl.col("up")).then(float(qty)).otherwise(None),
            stop_pct=pl.when(pl.col("up")).then(float(stop_pct)).otherwise(None),
            target_pct=pl.when(pl.col("up")).then(float(target_pct)).otherwise(None),
        )
    )
    return crosses.collect()


SMA_CROSS = register(
    Strategy(
        name="sma_cross",
        fn=sma_cross_intents,
        params=(
            Param("fast", int, 10, minimum=1, help="fast SMA length (bars)"),
            Param("slow", int, 50, minimum=2, help="slow SMA length (bars)"),
            Param("stop_pct", float, 0.01, minimum=0.0, maximum=1.0, help="stop below fill"),
            Param("target_pct", float, 0.02, minimum=0.0, help="target above fill"),
            Param("qty", float, 100, minimum=0.0, help="units per entry"),
        ),
        doc=__doc__ or "",
    )
)
