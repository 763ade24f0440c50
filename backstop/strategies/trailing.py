"""Trailing stops from a strategy's own price line (a chandelier, an ATR band, a cloud edge).

A strategy computes its trailing level per bar as a column; ``stop_updates`` turns that dense
column into sparse stop-update rows (``EventKind.STOP_UPDATE``) for the intent table: one row
where a symbol's level changes. The pipeline then moves the working stop leg of the position
to each level that tightens it, and journals a verdict for every row: ``STOP_MOVED``, or
``STOP_NOT_TIGHTER`` / ``STOP_UPDATE_NO_STOP`` when it leaves the stop alone. A level on the
wrong side of the price makes the stop trigger on the next bar, as a broker's would.
"""

from __future__ import annotations

import polars as pl

from backstop.domain.enums import EventKind
from backstop.domain.intake import intent_frame
from backstop.errors import ConfigError, check


def stop_updates(
    bars: pl.DataFrame, level: str | pl.Expr, strategy_id: str = "default"
) -> pl.DataFrame:
    """Stop-update intent rows from ``level`` (a column name or expression over ``bars``).

    ``bars`` (polars or pandas) needs ``ts`` and ``symbol``; null levels (no line yet) send
    nothing. Concatenate the result with the strategy's entries and exits.
    """
    bars = intent_frame(bars, "bars", "bars")
    for col in ("ts", "symbol"):
        check(col in bars.columns, ConfigError(col, "stop_updates needs this bars column"))
    expr = pl.col(level) if isinstance(level, str) else level
    lines = bars.select("ts", "symbol", expr.cast(pl.Float64).alias("stop_px")).sort(
        "symbol", "ts", maintain_order=True
    )
    changed = pl.col("stop_px") != pl.col("stop_px").shift(1).over("symbol")
    first = pl.col("stop_px").shift(1).over("symbol").is_null()
    rows = lines.filter(pl.col("stop_px").is_not_null() & (changed | first))
    return rows.sort("ts", "symbol", maintain_order=True).with_columns(
        kind=pl.lit(int(EventKind.STOP_UPDATE), dtype=pl.Int8),
        side=pl.lit(1, dtype=pl.Int8),
        intent=pl.lit(0, dtype=pl.Int8),
        strategy_id=pl.lit(strategy_id),
    )
