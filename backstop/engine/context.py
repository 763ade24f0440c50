"""Per-bar context of a run: session day, market hours, session close and data quality.

Built once per run in Python from the bars, the instruments and the risk profile, and read by
the kernels row by row. A profile that needs none of it gets ``plain_context()`` (one element
standing for every row), so a plain research backtest pays nothing.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from backstop.data.calendars import bar_sessions, calendar_for
from backstop.data.quality import quality_scores
from backstop.domain.instruments import Instrument
from backstop.engine.core.records import BarContext, plain_context
from backstop.engine.inputs import BarArrays
from backstop.engine.profile import RiskProfile

CALENDAR_KEYS = ("risk.market_hours", "exits.eod_minutes_before_close")
DAILY_KEYS = (
    "risk.daily_loss_pct",
    "risk.daily_loss_dollars",
    "risk.max_trades_per_day",
    "risk.max_trades_per_day_account",
    "risk.daily_allocation",
    "risk.max_consecutive_losses",
    "risk.circuit_loss_pct",
    "kill.daily_loss_pct",
    "kill.daily_loss_dollars",
)
QUALITY_KEYS = ("risk.min_data_quality", "kill.min_data_quality")


def calendar_of(spec: Instrument, profile: RiskProfile) -> str:
    """The exchange calendar of a symbol: the profile's, or by instrument kind when auto."""
    return calendar_for(spec.is_future) if profile.calendar == "auto" else profile.calendar


DAILY_BAR_NS = 20 * 3600 * 1_000_000_000  # bars this far apart (median) are daily or longer
NEVER = np.iinfo(np.int64).max


def daily_bar_closes(
    arrays: BarArrays, specs: tuple[Instrument, ...], profile: RiskProfile
) -> np.ndarray | None:
    """Per bar row, the close of the session a daily bar stands for (``NEVER`` for rows of
    intraday symbols); None when no symbol has daily bars.

    A daily bar is stamped at the start of its date (00:00 in its zone), before its session;
    the calendar places such a stamp in the session that follows it, the bar's own.
    Intents after that close belong to the bar (``inputs._asof_rows``).
    """
    out: np.ndarray | None = None
    if arrays.n < 2:
        return None
    counts = np.bincount(arrays.sym, minlength=len(specs))
    span = int(arrays.ts[-1]) - int(arrays.ts[0])  # bars are in time order
    for s, spec in enumerate(specs):
        # a median gap of a day or more needs half the symbol's gaps that long: when the
        # whole run is too short for that, the symbol is intraday without a pass over its
        # rows (W's 100 symbols x 10M rows were half a second of comparisons)
        gaps = int(counts[s]) - 1
        if gaps < 1 or span < (gaps // 2) * DAILY_BAR_NS:
            continue
        rows = np.flatnonzero(arrays.sym == s)
        if np.median(np.diff(arrays.ts[rows])) < DAILY_BAR_NS:
            continue
        if out is None:
            out = np.full(arrays.n, NEVER, dtype=np.int64)
        out[rows] = bar_sessions(arrays.ts[rows], calendar_of(spec, profile)).close_ns
    return out


def bar_context(
    bars: pl.DataFrame,
    arrays: BarArrays,
    specs: tuple[Instrument, ...],
    profile: RiskProfile,
) -> BarContext:
    """The context arrays the profile needs, and nothing more."""
    need_calendar = profile.uses(*CALENDAR_KEYS)
    need_days = profile.uses(*DAILY_KEYS)
    need_quality = profile.uses(*QUALITY_KEYS)
    if not (need_calendar or need_days or need_quality):
        return plain_context()
    plain = plain_context()
    n = arrays.n
    day, in_hours, close_ns = plain.day, plain.in_hours, plain.close_ns
    if need_calendar or need_days:
        # daily limits count by the exchange's trading day (a futures day starts the evening
        # before; a weekend bar belongs to the next session), the same day the calendar uses
        day = np.zeros(n, dtype=np.int64)
        in_hours = np.zeros(n, dtype=np.bool_)
        close_ns = np.zeros(n, dtype=np.int64)
        calendars = np.array([calendar_of(spec, profile) for spec in specs])
        for name in sorted(set(calendars.tolist())):
            syms = np.flatnonzero(calendars == name)
            rows = np.flatnonzero(np.isin(arrays.sym, syms))
            sessions = bar_sessions(arrays.ts[rows], name)
            day[rows] = sessions.day
            in_hours[rows] = sessions.session >= 0
            close_ns[rows] = sessions.close_ns
    quality = quality_scores(bars) if need_quality else plain.quality
    return BarContext(day=day, in_hours=in_hours, close_ns=close_ns, quality=quality)
