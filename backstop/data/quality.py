"""Market-data quality: a score in [0, 1] per bar, for the risk gate and the kill switch.

A trading decision on bad data is a decision on nothing. Each bar starts at 1.0 and is
multiplied down by what looks wrong with it, judged only from its own symbol's past (no
look-ahead):

- stale: the gap since the symbol's previous bar is more than ``STALE_GAPS`` times its
  median gap (x0.5), or more than ``DEAD_GAPS`` times (x0.1): a feed that stalled;
- no volume (x0.5), and a flat bar (high == low) with no volume (x0.25 more): no trading;
- outlier: the close moved more than ``OUTLIER_MADS`` times the symbol's median absolute
  one-bar move over the last ``WINDOW`` bars (x0.25): a bad print or a broken feed.

The first bar of a symbol has no past and scores 1.0. Scores are deterministic and cheap
(vectorised polars, no Python per bar).
"""

from __future__ import annotations

import numpy as np
import polars as pl

STALE_GAPS = 5.0
DEAD_GAPS = 30.0
OUTLIER_MADS = 12.0
WINDOW = 50


def quality_scores(bars: pl.DataFrame) -> np.ndarray:
    """Score of every bar of a validated frame, in the frame's row order (float64)."""
    if bars.is_empty():
        return np.zeros(0, dtype=np.float64)
    by = "symbol"
    gap = pl.col("ts").diff().over(by)
    med_gap = pl.col("_gap").median().over(by)
    move = (pl.col("close") / pl.col("close").shift(1)).log().abs().over(by)
    typical = pl.col("_move").shift(1).rolling_median(WINDOW, min_samples=WINDOW // 2).over(by)
    scored = (
        bars.select("ts", "symbol", "high", "low", "close", "volume")
        .with_columns(_gap=gap, _move=move)
        .with_columns(_med_gap=med_gap, _typical=typical)
        .select(
            (
                pl.when(pl.col("_gap") > DEAD_GAPS * pl.col("_med_gap"))
                .then(0.1)
                .when(pl.col("_gap") > STALE_GAPS * pl.col("_med_gap"))
                .then(0.5)
                .otherwise(1.0)
                * pl.when(pl.col("volume") <= 0).then(0.5).otherwise(1.0)
                * pl.when((pl.col("volume") <= 0) & (pl.col("high") == pl.col("low")))
                .then(0.25)
                .otherwise(1.0)
                * pl.when(
                    (pl.col("_typical") > 0) & (pl.col("_move") > OUTLIER_MADS * pl.col("_typical"))
                )
                .then(0.25)
                .otherwise(1.0)
            ).alias("q")
        )
    )
    return scored.get_column("q").fill_null(1.0).to_numpy().astype(np.float64)
