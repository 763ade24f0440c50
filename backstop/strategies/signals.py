"""Intent rows from per-bar lines, so a strategy is a few lines of indicator code.

``signal_intents(bars, entries, exits)`` turns two per-bar yes/no series into long entries
(with an optional bracket: ``stop_pct`` below and ``target_pct`` above the fill) and exits;
``crossover_intents(bars, fast_line, slow_line)`` enters where the fast line crosses above
the slow one and exits where it crosses below, by the rule ``sma_cross`` uses: a cross up at
bar t is ``fast[t] > slow[t]`` and ``fast[t-1] <= slow[t-1]`` within one symbol. A line is a
column name, a polars expression over ``bars``, a series or array with one value per bar,
or a number (a level, such as an RSI of 30). Null or NaN values (an indicator still warming
up) signal nothing. Like every strategy, these do not track positions: an entry while long
or an exit while flat is refused by the pipeline, with its reason journaled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from backstop.domain.intake import intent_frame
from backstop.errors import ConfigError, check


def signal_intents(
    bars: Any,
    entries: Any,
    exits: Any = None,
    *,
    stop_pct: float | None = None,
    target_pct: float | None = None,
    qty: float | None = None,
    strategy_id: str | None = None,
) -> pl.DataFrame:
    """Long entries where ``entries`` is true and exits where ``exits`` is true.

    Entries carry ``qty`` (None: the profile sizes them) and the bracket percentages (None:
    no leg). On a bar where both are true the exit row comes first. ``strategy_id`` None
    leaves the rows to the strategy running them (its name).
    """
    frame = _bars(bars)
    enter = _line(frame, entries, "entries").cast(pl.Boolean).fill_null(False)
    leave = (
        pl.Series("exits", [False] * frame.height)
        if exits is None
        else _line(frame, exits, "exits").cast(pl.Boolean).fill_null(False)
    )
    keys = frame.select("ts", "symbol")
    rows = pl.concat(
        [
            keys.filter(leave).with_columns(side=pl.lit(-1), intent=pl.lit(1), qty=None),
            keys.filter(enter).with_columns(
                side=pl.lit(1), intent=pl.lit(0), qty=pl.lit(qty, dtype=pl.Float64)
            ),
        ],
        how="vertical_relaxed",
    )
    bracket = {"stop_pct": stop_pct, "target_pct": target_pct}
    for name, value in bracket.items():
        if value is not None:
            check(
                np.isfinite(value) and value >= 0,
                ConfigError(name, f"must be a fraction >= 0 (0.02 is 2%), got {value!r}"),
            )
    rows = rows.with_columns(
        side=pl.col("side").cast(pl.Int8),
        intent=pl.col("intent").cast(pl.Int8),
        qty=pl.col("qty").cast(pl.Float64),
        **{
            name: pl.when(pl.col("intent") == 0).then(pl.lit(value, dtype=pl.Float64))
            for name, value in bracket.items()
        },
    )
    if strategy_id is not None:
        rows = rows.with_columns(strategy_id=pl.lit(strategy_id, dtype=pl.String))
    return rows.sort("ts", "symbol", "intent", descending=[False, False, True], maintain_order=True)


def crossover_intents(
    bars: Any,
    fast_line: Any,
    slow_line: Any,
    *,
    stop_pct: float | None = None,
    target_pct: float | None = None,
    qty: float | None = None,
    strategy_id: str | None = None,
) -> pl.DataFrame:
    """Enter long where ``fast_line`` crosses above ``slow_line``, exit where it crosses below."""
    frame = _bars(bars)
    lines = frame.select("symbol").with_columns(
        fast=_line(frame, fast_line, "fast_line").cast(pl.Float64).fill_nan(None),
        slow=_line(frame, slow_line, "slow_line").cast(pl.Float64).fill_nan(None),
    )
    prev_fast = pl.col("fast").shift(1).over("symbol")
    prev_slow = pl.col("slow").shift(1).over("symbol")
    crosses = lines.select(
        up=(pl.col("fast") > pl.col("slow")) & (prev_fast <= prev_slow),
        down=(pl.col("fast") < pl.col("slow")) & (prev_fast >= prev_slow),
    )
    return signal_intents(
        frame,
        crosses["up"],
        crosses["down"],
        stop_pct=stop_pct,
        target_pct=target_pct,
        qty=qty,
        strategy_id=strategy_id,
    )


def _bars(bars: Any) -> pl.DataFrame:
    """The bars as polars, with the ``ts`` and ``symbol`` the intent rows are keyed by."""
    frame = intent_frame(bars, "bars", "bars")
    for col in ("ts", "symbol"):
        check(col in frame.columns, ConfigError(col, "the bars lack this column"))
    return frame


def _line(frame: pl.DataFrame, line: Any, name: str) -> pl.Series:
    """One value per bar from a column name, an expression, a series/array or a number."""
    if isinstance(line, str):
        check(
            line in frame.columns,
            ConfigError(name, f"no column {line!r} in the bars (columns: {frame.columns})"),
        )
        return frame.get_column(line).alias(name)
    if isinstance(line, pl.Expr):
        return frame.select(line.alias(name)).to_series()
    if isinstance(line, int | float) and not isinstance(line, bool):
        return pl.Series(name, [float(line)] * frame.height)
    try:
        series = pl.Series(name, line) if not isinstance(line, pl.Series) else line.alias(name)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            name, f"expected a column name, an expression, a series or a number, not {line!r}"
        ) from exc
    check(
        series.len() == frame.height,
        ConfigError(name, f"has {series.len()} values for {frame.height} bars: give one per bar"),
    )
    return series
