"""Daily P&L per strategy (seed 002's "daily P&L table and report"), from the journal alone.

A round trip counts on the day it closed, in the run's ``session_tz`` (the exchange's zone,
``BacktestConfig.session_tz``): a strategy's realized result that day. Open positions are not
in it (their P&L is not realized yet); the equity table has the marked account.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from backstop.engine.journal import read_table

DAILY_COLUMNS = ("day", "strategy_id", "trades", "wins", "losses", "pnl", "fees", "net_pnl")
DAILY_SCHEMA = {
    "day": pl.Date,
    "strategy_id": pl.String,
    "trades": pl.UInt32,
    "wins": pl.UInt32,
    "losses": pl.UInt32,
    "pnl": pl.Float64,
    "fees": pl.Float64,
    "net_pnl": pl.Float64,
}


def daily_pnl(trades: pl.DataFrame, tz: str = "America/New_York") -> pl.DataFrame:
    """One row per (day, strategy) with closed round trips, sorted by day then strategy.

    ``trades`` has the journal's trades columns (``exit_ts`` int64 ns UTC, ``strategy_id``,
    ``pnl``, ``fees``, ``net_pnl``); a win is a positive ``net_pnl``, a loss a negative one
    (a trade at exactly 0 is neither). ``day`` is the exit's date in ``tz``.
    """
    if trades.height == 0:
        return pl.DataFrame(schema=DAILY_SCHEMA)
    day = pl.col("exit_ts").cast(pl.Datetime("ns", "UTC")).dt.convert_time_zone(tz).dt.date()
    return (
        trades.with_columns(day.alias("day"), pl.col("strategy_id").fill_null("default"))
        .group_by("day", "strategy_id")
        .agg(
            pl.len().cast(pl.UInt32).alias("trades"),
            (pl.col("net_pnl") > 0).sum().cast(pl.UInt32).alias("wins"),
            (pl.col("net_pnl") < 0).sum().cast(pl.UInt32).alias("losses"),
            pl.col("pnl").sum(),
            pl.col("fees").sum(),
            pl.col("net_pnl").sum(),
        )
        .sort("day", "strategy_id")
        .select(DAILY_COLUMNS)
    )


def journal_daily_pnl(path: str | Path) -> pl.DataFrame:
    """``daily_pnl`` of a journal (its file or run folder), in the run's ``session_tz``."""
    config = json.loads(read_table(path, "run").row(0, named=True)["config"])
    return daily_pnl(read_table(path, "trades"), config.get("session_tz", "America/New_York"))


def daily_rows(table: pl.DataFrame) -> tuple[list[str], list[list[str]]]:
    """The table as report cells (money to cents)."""
    head = list(DAILY_COLUMNS)
    body = []
    for row in table.iter_rows(named=True):
        body.append(
            [
                str(row["day"]),
                str(row["strategy_id"]),
                str(row["trades"]),
                str(row["wins"]),
                str(row["losses"]),
                f"{row['pnl']:,.2f}",
                f"{row['fees']:,.2f}",
                f"{row['net_pnl']:,.2f}",
            ]
        )
    return head, body
