"""Shared pieces of the peer benchmark: workload constants, bars in memory, data loading.

Everything here runs under the peers virtual environments only (numpy, polars); nothing
imports the backstop package, so the peers are measured in isolation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The "SMA cross bracket" workload (WORKLOAD.md in the shared bench folder).
FAST = 10
SLOW = 50
SL_PCT = 0.01
TP_PCT = 0.02
QTY = 100

# Synthetic data, as WORKLOAD.md describes it.
START_PRICE = 100.0
SIGMA = 0.0008
GAP_FACTOR = 0.1  # gap noise sigma, relative to the per-bar sigma
WICK_FACTOR = 0.5  # high/low wick noise sigma, relative to the per-bar sigma
BAR_NS = 60_000_000_000
# 2020-01-02 09:30 America/New_York is 14:30 UTC (EST, UTC-5).
START_NS = 1_577_975_400_000_000_000


@dataclass(frozen=True, slots=True)
class SymbolBars:
    """One symbol's bars as contiguous float64 arrays (int64 ns UTC bar-open timestamps)."""

    symbol: str
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def head(self, n: int) -> SymbolBars:
        """The first ``n`` bars of this symbol."""
        return SymbolBars(
            self.symbol,
            self.ts[:n],
            self.open[:n],
            self.high[:n],
            self.low[:n],
            self.close[:n],
            self.volume[:n],
        )


@dataclass(slots=True)
class EngineResult:
    """One JSON line of the report: what an engine traded and how long it took."""

    engine: str
    version: str
    bars: int
    symbols: int
    round_trips: int
    pnl: float
    first_run_seconds: float
    run_seconds: float
    bars_per_second: float
    notes: list[str] = field(default_factory=list)

    def as_json_dict(self) -> dict[str, object]:
        """The report line, with notes joined into one string."""
        return {
            "engine": self.engine,
            "version": self.version,
            "bars": self.bars,
            "symbols": self.symbols,
            "round_trips": self.round_trips,
            "pnl": round(self.pnl, 6),
            "first_run_seconds": round(self.first_run_seconds, 6),
            "run_seconds": round(self.run_seconds, 6),
            "bars_per_second": round(self.bars_per_second, 1),
            "notes": " ".join(self.notes),
        }


def load_parquet(path: Path) -> list[SymbolBars]:
    """Read a workload parquet file into per-symbol arrays sorted by (symbol, ts)."""
    import polars as pl

    df = pl.read_parquet(path, columns=["ts", "symbol", "open", "high", "low", "close", "volume"])
    df = df.with_columns(pl.col("symbol").cast(pl.Utf8)).sort(["symbol", "ts"])
    out: list[SymbolBars] = []
    for (symbol,), part in df.partition_by("symbol", as_dict=True, maintain_order=True).items():
        out.append(
            SymbolBars(
                symbol=str(symbol),
                ts=part["ts"].cast(pl.Int64).to_numpy().copy(),
                open=part["open"].cast(pl.Float64).to_numpy().copy(),
                high=part["high"].cast(pl.Float64).to_numpy().copy(),
                low=part["low"].cast(pl.Float64).to_numpy().copy(),
                close=part["close"].cast(pl.Float64).to_numpy().copy(),
                volume=part["volume"].cast(pl.Float64).to_numpy().copy(),
            )
        )
    return out


def synthetic(
    n_bars: int, n_symbols: int = 1, seed: int = 7, sigma: float = SIGMA
) -> list[SymbolBars]:
    """Seeded GBM minute bars per WORKLOAD.md (a fallback when no parquet file is given).

    Closes follow a driftless GBM with sigma 0.0008 per bar from 100; each open is the
    previous close times a small gap noise; high/low widen max/min(open, close) by |noise|;
    volume is a random integer in [100, 10000]; timestamps are continuous 1-minute steps
    from 2020-01-02 09:30 America/New_York. A larger ``sigma`` (gap and wick noise scale
    with it) is only for exercising stops and gaps when checking the adapters.
    """
    out: list[SymbolBars] = []
    ts = START_NS + np.arange(n_bars, dtype=np.int64) * BAR_NS
    for k in range(n_symbols):
        rng = np.random.default_rng([seed, k])
        close = START_PRICE * np.exp(np.cumsum(rng.normal(0.0, sigma, n_bars)))
        prev_close = np.concatenate(([START_PRICE], close[:-1]))
        open_ = prev_close * (1.0 + rng.normal(0.0, sigma * GAP_FACTOR, n_bars))
        high = np.maximum(open_, close) * (
            1.0 + np.abs(rng.normal(0.0, sigma * WICK_FACTOR, n_bars))
        )
        low = np.minimum(open_, close) * (
            1.0 - np.abs(rng.normal(0.0, sigma * WICK_FACTOR, n_bars))
        )
        volume = rng.integers(100, 10_001, n_bars).astype(np.float64)
        out.append(SymbolBars(f"SYM{k:03d}", ts.copy(), open_, high, low, close, volume))
    return out


def save_parquet(data: Sequence[SymbolBars], path: Path) -> None:
    """Write bars in the workload's parquet layout (ts int64 ns UTC, symbol, OHLC, volume)."""
    import polars as pl

    frames = [
        pl.DataFrame(
            {
                "ts": s.ts,
                "symbol": [s.symbol] * len(s),
                "open": s.open,
                "high": s.high,
                "low": s.low,
                "close": s.close,
                "volume": s.volume.astype(np.int64),
            }
        )
        for s in data
    ]
    pl.concat(frames).write_parquet(path)


def truncate(data: Sequence[SymbolBars], max_bars: int | None) -> list[SymbolBars]:
    """Keep the first ``max_bars`` bars of every symbol (all of them when None)."""
    if max_bars is None:
        return list(data)
    return [s.head(max_bars) for s in data]


def same_timestamps(data: Sequence[SymbolBars]) -> bool:
    """Whether every symbol has exactly the same bar timestamps (a rectangular panel)."""
    first = data[0].ts
    return all(s.ts.shape == first.shape and np.array_equal(s.ts, first) for s in data[1:])


def timed(fn: Callable[[], tuple[int, float]]) -> tuple[float, int, float]:
    """Run ``fn`` once and return (wall seconds, round trips, pnl)."""
    t0 = time.perf_counter()
    trips, pnl = fn()
    return time.perf_counter() - t0, trips, pnl


def rate(bars: int, seconds: float) -> float:
    """Bars per second (0.0 for a zero duration, which keeps the JSON line valid)."""
    return bars / seconds if seconds > 0 else 0.0
