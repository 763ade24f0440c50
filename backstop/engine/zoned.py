"""Result frames for people: their time columns as zone-aware datetimes, not int ns.

Kernels and the journal keep times as int64 ns UTC (JOURNAL.md); ``BacktestResult``'s frames
(``.trades``, ``.orders``, ``.fills``, ``.verdicts``, ``.equity``, ``.guard_events``) show them
as ``Datetime("ns", zone)``. The zone is the run's: the ``tz`` it was given (the ``--tz`` its
bars' naive times were read in), else the exchange zone every one of its symbols shares in
the instrument registry (ES, NQ...: ``America/Chicago``), else UTC. Converting changes how an
instant is shown, never which instant it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from backstop.domain.instruments import exchange_zone


def time_columns(frame: pl.DataFrame) -> list[str]:
    """The int columns of ``frame`` that hold times: ``ts`` and every ``*_ts``."""
    return [
        name
        for name, dtype in frame.schema.items()
        if (name == "ts" or name.endswith("_ts")) and dtype == pl.Int64
    ]


def zoned(frame: pl.DataFrame, zone: str) -> pl.DataFrame:
    """``frame`` with its time columns as ``Datetime("ns", zone)`` (nulls stay null)."""
    cols = time_columns(frame)
    if not cols:
        return frame
    return frame.with_columns(
        pl.col(c).cast(pl.Datetime("ns", "UTC")).dt.convert_time_zone(zone) for c in cols
    )


def run_zone(tz: str | None, symbols: Sequence[str]) -> str:
    """The zone a run's times are shown in: ``tz``, else the symbols' one exchange zone,
    else UTC."""
    if tz:
        return tz
    zones = {exchange_zone(s) for s in symbols}
    if len(zones) == 1 and None not in zones:
        return str(zones.pop())
    return "UTC"
