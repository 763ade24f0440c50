"""Which symbols' bars are daily (seed 003's 16:05 signal attaches to the day's bar): found
from each symbol's median bar gap, with a bound that skips the pass over a symbol's rows when
the run is too short for half its gaps to be a day long (an intraday panel of 10M rows paid
half a second for it)."""

from __future__ import annotations

import numpy as np
import polars as pl

from backstop.domain.instruments import Instrument
from backstop.engine.context import NEVER, daily_bar_closes
from backstop.engine.inputs import bar_arrays
from backstop.engine.profile import RiskProfile

DAY = 86_400_000_000_000
MIN = 60_000_000_000
T0 = 1_704_171_600_000_000_000  # 2024-01-02 05:00 UTC, 00:00 New York


def frame(rows: list[tuple[int, str]]) -> pl.DataFrame:
    ts, sym = zip(*sorted(rows), strict=True)
    n = len(ts)
    return pl.DataFrame(
        {"ts": list(ts), "symbol": list(sym), "open": [1.0] * n, "high": [1.0] * n,
         "low": [1.0] * n, "close": [1.0] * n, "volume": [1.0] * n}
    )  # fmt: skip


def closes(bars: pl.DataFrame) -> tuple[np.ndarray | None, np.ndarray]:
    arrays = bar_arrays(bars)
    specs = tuple(Instrument.equity(s) for s in arrays.symbols)
    return daily_bar_closes(arrays, specs, RiskProfile()), arrays.sym


def test_daily_symbols_among_intraday_ones_get_their_sessions_close() -> None:
    """Daily bars of D on 3 days beside minute bars of M on the same days: D's rows get their
    session's 16:00 New York close, M's rows none; a panel of minute bars alone is None."""
    daily = [(T0 + k * DAY, "D") for k in range(3)]
    minutes = [(T0 + k * DAY + (570 + m) * MIN, "M") for k in range(3) for m in range(390)]
    out, sym = closes(frame(daily + minutes))
    assert out is not None
    d_rows = sym == 0
    assert (out[~d_rows] == NEVER).all()
    assert (out[d_rows] == [T0 + k * DAY + 16 * 60 * MIN for k in range(3)]).all()
    assert closes(frame(minutes))[0] is None


def test_two_daily_bars_are_enough_and_one_is_not() -> None:
    out, _ = closes(frame([(T0, "D"), (T0 + DAY, "D")]))
    assert out is not None and (out != NEVER).all()
    assert closes(frame([(T0, "D")]))[0] is None
