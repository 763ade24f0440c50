"""Synthetic GBM bars: the data recipe of the shared benchmark workload, seeded and vectorised.

The recipe (``bench/WORKLOAD.md`` of the shared docs): per symbol, closes follow a geometric
Brownian motion with per-bar sigma 0.0008 and zero drift (log returns have mean 0); each open
is the previous close times a small log-normal gap; the high is ``max(open, close)`` times
``1 + |noise|`` and the low ``min(open, close)`` divided by it, so both stay positive and
outside the body; volume is a random integer in 100..10000. Bars are one minute apart from the
start in its time zone, continuously (no sessions, weekends or holidays). One
``np.random.default_rng(seed)`` draws the symbols in list order, so the first k symbols of a
frame do not depend on how many symbols follow them. Symbols named by count are ``SYN000``,
``SYN001``, ...: clearly not real tickers.
"""

from __future__ import annotations

import os
import zoneinfo
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from backstop.data.schema import BAR_SCHEMA
from backstop.errors import DataError, check

_MINUTE_NS = 60_000_000_000
_GAP_SCALE = 0.25
"""Gap noise sigma as a fraction of the bar sigma: opens sit close to the previous close."""
_WICK_SCALE = 0.5
"""Wick noise sigma as a fraction of the bar sigma: highs and lows poke out a little."""
_VOLUME_MIN, _VOLUME_MAX = 100, 10_000

_ENCODINGS = {
    "ts": "DELTA_BINARY_PACKED",
    **dict.fromkeys(("open", "high", "low", "close"), "BYTE_STREAM_SPLIT"),
}
"""Parquet encodings that suit the columns: steady minute steps, and floats (a third smaller)."""

WORKLOAD_SIZES: dict[str, tuple[int, int]] = {
    "S": (100_000, 1),
    "M": (1_000_000, 1),
    "W": (100_000, 100),
}
"""Benchmark sizes as (bars per symbol, number of symbols)."""


def gbm_bars(
    n_bars: int,
    symbols: list[str] | int = 1,
    *,
    seed: int = 42,
    start: str = "2020-01-02 09:30",
    tz: str = "America/New_York",
    start_price: float = 100.0,
    sigma: float = 0.0008,
) -> pl.DataFrame:
    """Generate ``n_bars`` one-minute GBM bars per symbol, as ``BAR_SCHEMA`` sorted by (ts, symbol).

    ``symbols`` is a list of names or a count (named ``SYN000``, ``SYN001``, ...). ``start`` is
    a wall time in ``tz``; timestamps are int64 ns UTC. Same arguments give the same frame.
    """
    names = _symbol_names(symbols)
    check(isinstance(n_bars, int) and n_bars >= 1, DataError(f"n_bars must be >= 1, got {n_bars}"))
    check(
        np.isfinite(start_price) and start_price > 0,
        DataError(f"start_price must be > 0, got {start_price}"),
    )
    check(np.isfinite(sigma) and sigma >= 0, DataError(f"sigma must be >= 0, got {sigma}"))
    t0 = _start_ns(start, tz)

    rng = np.random.default_rng(seed)
    per_symbol = [_one_symbol(rng, n_bars, start_price, sigma) for _ in names]
    order = sorted(range(len(names)), key=names.__getitem__)
    # Stack as (n_bars, n_symbols) with symbols in name order: raveling row-major then yields
    # rows sorted by (ts, symbol) without a sort.
    columns = {
        field: np.stack([per_symbol[k][field] for k in order], axis=1).ravel()
        for field in ("open", "high", "low", "close", "volume")
    }
    n_sym = len(names)
    ts = np.repeat(t0 + np.arange(n_bars, dtype=np.int64) * _MINUTE_NS, n_sym)
    symbol = pl.Series("symbol", [names[k] for k in order], dtype=pl.String).gather(
        np.tile(np.arange(n_sym, dtype=np.uint32), n_bars)
    )
    return pl.DataFrame({"ts": ts, "symbol": symbol, **columns}, schema=BAR_SCHEMA)


def write_workload(path: str | os.PathLike[str], size: str, *, seed: int = 42) -> Path:
    """Write a benchmark workload (``S``, ``M`` or ``W`` of ``WORKLOAD_SIZES``) as Parquet.

    Columns are ts (int64 ns UTC), symbol, open, high, low, close, volume; the schema metadata
    marks the file synthetic. Returns the path written.
    """
    check(
        size in WORKLOAD_SIZES,
        DataError(f"unknown workload size {size!r}: expected one of {', '.join(WORKLOAD_SIZES)}"),
    )
    n_bars, n_symbols = WORKLOAD_SIZES[size]
    bars = gbm_bars(n_bars, n_symbols, seed=seed)
    return write_synthetic(path, bars, f"seed={seed} workload={size}")


def write_synthetic(path: str | os.PathLike[str], bars: pl.DataFrame, generator: str) -> Path:
    """Write generated bars as Parquet whose schema metadata says they are synthetic.

    The keys ``backstop.synthetic`` ("true") and ``backstop.generator`` (how they were made)
    travel with the file, so it is never mistaken for market data. Returns the path written.
    """
    import pyarrow.parquet as pq  # here, not at import: every command imports this module

    out = Path(path)
    meta = {"backstop.synthetic": "true", "backstop.generator": f"gbm_bars {generator}"}
    table = bars.to_arrow().replace_schema_metadata(meta)
    try:
        pq.write_table(
            table,
            out,
            compression="zstd",
            use_dictionary=["symbol", "volume"],
            column_encoding=_ENCODINGS,
        )
    except OSError as exc:
        raise DataError(f"cannot write Parquet: {exc}", source=str(out)) from exc
    return out


def _symbol_names(symbols: list[str] | int) -> list[str]:
    """Resolve a symbol count to ``SYN000``-style names, or check a list of names."""
    if isinstance(symbols, int) and not isinstance(symbols, bool):
        check(symbols >= 1, DataError(f"symbols must be >= 1, got {symbols}"))
        return [f"SYN{k:03d}" for k in range(symbols)]
    check(
        isinstance(symbols, list | tuple)
        and len(symbols) > 0
        and all(isinstance(s, str) and s for s in symbols),
        DataError(f"symbols must be a count or a list of non-empty names, got {symbols!r}"),
    )
    names = list(symbols)
    check(len(set(names)) == len(names), DataError(f"duplicate symbol names in {names}"))
    return names


def _start_ns(start: str, tz: str) -> int:
    """Turn a wall time in ``tz`` into int64 ns UTC."""
    try:
        zone = zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise DataError(f"tz {tz!r} is not an IANA time zone") from exc
    try:
        local = datetime.fromisoformat(start)
    except ValueError as exc:
        raise DataError(f"start {start!r} is not an ISO-8601 wall time") from exc
    check(
        local.tzinfo is None,
        DataError(f"start {start!r} must be a wall time without offset; tz gives the zone"),
    )
    moment = local.replace(tzinfo=zone).astimezone(UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _one_symbol(
    rng: np.random.Generator, n: int, start_price: float, sigma: float
) -> dict[str, np.ndarray]:
    """Draw one symbol's bars: closes by GBM, opens gapped off the previous close, wicks, volume.

    Work in place on the drawn arrays: at ten million bars, temporaries cost more than math.
    """
    shocks = rng.standard_normal((4, n))
    close = np.cumsum(shocks[0] * sigma)
    np.exp(close, out=close)
    close *= start_price
    gap = shocks[1]
    gap *= _GAP_SCALE * sigma
    np.exp(gap, out=gap)
    open_ = np.empty(n)
    open_[0] = start_price
    open_[1:] = close[:-1]
    open_ *= gap
    high = np.maximum(open_, close)
    high *= _wick(shocks[2], sigma)
    low = np.minimum(open_, close)
    low /= _wick(shocks[3], sigma)
    volume = rng.integers(_VOLUME_MIN, _VOLUME_MAX, size=n, endpoint=True).astype(np.float64)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def _wick(shock: np.ndarray, sigma: float) -> np.ndarray:
    """Turn normal draws into wick factors ``1 + k|z|`` (>= 1, so highs and lows stay outside)."""
    np.abs(shock, out=shock)
    shock *= _WICK_SCALE * sigma
    shock += 1.0
    return shock
