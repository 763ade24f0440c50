"""Trading sessions: which exchange session (if any) each bar timestamp falls in.

Risk gates ("no entries outside market hours") and exit rules ("flatten before the close")
need the real schedule of the exchange, holidays and early closes included, not a fixed
09:30-16:00 window. This module answers that for whole arrays of bar timestamps at once:
``bar_sessions`` maps int64 ns UTC timestamps to the containing session (or the next one),
with that session's open and close in ns UTC. ``session_table`` lists the sessions of a span
as a frame, for inspection and docs.

Schedules come from ``exchange_calendars`` (imported lazily, on the first schedule built). It
is always given explicit start and end dates derived from the timestamps, never its defaults,
which are computed from today's date: results depend on the input only, never on the wall
clock. A timestamp ``ts`` is inside a session when ``open <= ts < close``, so a bar stamped at
its open time is inside and a bar stamped exactly at the close is outside.

Supported calendars (``CALENDARS``):

* ``"XNYS"``: New York Stock Exchange, US equities. 09:30-16:00 America/New_York, early
  closes at 13:00 (day before Independence Day, day after Thanksgiving, Christmas Eve).
* ``"CMES"``: Chicago Mercantile Exchange, used for the CME equity index futures (ES, MES,
  NQ, MNQ). ``exchange_calendars`` names it ``"CMES"`` too (aliases ``"CME"``, ``"CBOT"``,
  ``"COMEX"``, ``"NYMEX"``). Its model is one generic CME schedule: each session opens
  17:00 America/Chicago on the previous calendar day and closes 17:00 America/Chicago on the
  session date, so consecutive sessions touch (the close of one is the open of the next).
  It models no break (``break_start``/``break_end`` are empty), so the real daily
  16:00-17:00 CT maintenance halt of the equity futures counts as inside the session; the
  weekend, Friday 17:00 CT close to Sunday 17:00 CT open, is outside. Holidays are New
  Year, Good Friday and Christmas; MLK, Presidents, Memorial, Independence, Labor and
  Thanksgiving Days, the day after Thanksgiving and Christmas Eve are early closes at
  12:00 CT. CME's own notices for equity products can differ by minutes (12:15 CT on some
  of those days); the calendar uses 12:00 CT throughout.
* ``"ALWAYS"``: no calendar, trading 24/7: every instant is inside, sessions are UTC days
  ``[00:00, 24:00)``.

Breaks: calendars with a midday break (``exchange_calendars`` ``break_start``/``break_end``)
are handled generically: a timestamp in ``[break_start, break_end)`` is outside
(``session == -1``) and reports the session it interrupts (trading resumes at its break end,
before that session's close). Neither XNYS nor CMES has a break in ``exchange_calendars``.

Holidays in years beyond the current one are rule projections by ``exchange_calendars``: a
holiday created later (as Juneteenth was in 2022) or an unscheduled closure cannot be known.
Timestamps outside years ``FIRST_YEAR`` to ``LAST_YEAR`` are refused with a ``DataError``.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from backstop.errors import ConfigError, DataError

if TYPE_CHECKING:
    import polars as pl

CALENDARS: tuple[str, ...] = ("XNYS", "CMES", "ALWAYS")
"""The calendar names backstop accepts."""

_XC_NAMES: dict[str, str] = {"XNYS": "XNYS", "CMES": "CMES"}
"""Our calendar name -> the ``exchange_calendars`` name (``"ALWAYS"`` has none)."""

FIRST_YEAR = 1900
"""Earliest year a timestamp may fall in; older data would be a unit or epoch mistake."""
LAST_YEAR = 2200
"""Latest year a timestamp may fall in; far-future holidays are guesses, and ns overflow nears."""

NS_PER_DAY = 86_400 * 10**9
_PAD_DAYS = 31
"""Days of schedule loaded beyond the timestamps, so the next session after any ts is known."""

# ns UTC bounds of [FIRST_YEAR-01-01, LAST_YEAR+1-01-01)
_MIN_NS = int(np.datetime64(f"{FIRST_YEAR}-01-01", "ns").astype(np.int64))
_MAX_NS = int(np.datetime64(f"{LAST_YEAR + 1}-01-01", "ns").astype(np.int64))


@dataclass(frozen=True, slots=True)
class SessionArrays:
    """Per-bar session facts, aligned with the ``ts_ns`` given to ``bar_sessions``.

    ``session``: int32, the session whose ``[open, close)`` contains the bar, numbered from 0 =
    the earliest session any bar of this call is in or precedes; -1 when the bar is outside
    every session (holiday, weekend, overnight, or inside a break). Use ``day`` as a key that
    is stable across calls.
    ``open_ns``/``close_ns``: int64 ns UTC, that session's open and close (early closes
    included); for a bar outside every session, those of the next session (for a bar in a
    break, those of the session the break interrupts).
    ``day``: int32, the session's date (the exchange's session label) as days since
    1970-01-01, of the same session as ``open_ns``/``close_ns``.
    """

    session: np.ndarray
    open_ns: np.ndarray
    close_ns: np.ndarray
    day: np.ndarray


@dataclass(frozen=True, slots=True)
class _Schedule:
    """One calendar's sessions over a span, sorted, as read-only arrays (ns UTC, days)."""

    day: np.ndarray  # int32 session date, days since epoch
    open_ns: np.ndarray  # int64
    close_ns: np.ndarray  # int64
    break_start_ns: np.ndarray | None  # int64, -1 where no break; None when the span has none
    break_end_ns: np.ndarray | None
    early_close: np.ndarray  # bool


def calendar_for(symbol_is_future: bool) -> str:
    """Default calendar of a symbol: CME equity index futures trade ``"CMES"``, the rest NYSE."""
    return "CMES" if symbol_is_future else "XNYS"


def _check_calendar(calendar: str) -> None:
    if calendar not in CALENDARS:
        raise ConfigError("calendar", f"unknown calendar {calendar!r} (known: {list(CALENDARS)})")


def _check_range(lo: int, hi: int, calendar: str) -> None:
    if lo < _MIN_NS or hi >= _MAX_NS:
        bad = lo if lo < _MIN_NS else hi
        raise DataError(
            f"timestamp {bad} ns ({np.datetime64(bad, 'ns')} UTC) is outside the years "
            f"{FIRST_YEAR}-{LAST_YEAR} that calendar {calendar!r} covers; "
            "ts must be int64 nanoseconds since 1970-01-01 UTC",
            column="ts",
        )


def _year_of(ns: int) -> int:
    return int(np.datetime64(ns, "ns").astype("datetime64[Y]").astype(np.int64)) + 1970


def _years_for(lo: int, hi: int) -> tuple[int, int]:
    """Year span of schedule to load for timestamps in ``[lo, hi]``, padded on both sides."""
    pad = _PAD_DAYS * NS_PER_DAY
    return _year_of(max(lo - pad, _MIN_NS)), _year_of(hi + pad)


def _utc_ns(values: object) -> np.ndarray:
    """tz-aware pandas datetimes (NaT allowed) -> int64 ns UTC, NaT -> -1."""
    import pandas as pd

    idx = pd.DatetimeIndex(values).tz_convert("UTC").tz_localize(None).as_unit("ns")
    out = idx.asi8.astype(np.int64, copy=True)
    out[idx.isna()] = -1
    return out


@functools.lru_cache(maxsize=32)
def _schedule(calendar: str, first_year: int, last_year: int) -> _Schedule:
    """Sessions of ``calendar`` labelled ``first_year-01-01`` to ``last_year-12-31``, cached."""
    import exchange_calendars as xc

    xc_name = _XC_NAMES[calendar]
    try:
        with warnings.catch_warnings():
            # exchange_calendars 4.13 reads tz-aware Series.values, deprecated in pandas 3.1;
            # the values it gets are still UTC ns, and the schedule is checked below
            warnings.filterwarnings("ignore", message=r"Series\.values returning an ndarray")
            cal = xc.get_calendar(xc_name, start=f"{first_year}-01-01", end=f"{last_year}-12-31")
    except Exception as exc:  # exchange_calendars raises several types for out-of-range dates
        raise DataError(
            f"exchange_calendars cannot build calendar {xc_name!r} for "
            f"{first_year}-{last_year}: {exc}",
            column="ts",
        ) from exc
    sched = cal.schedule
    labels = sched.index.as_unit("ns").asi8
    day = (labels // NS_PER_DAY).astype(np.int32)
    open_ns = _utc_ns(sched["open"])
    close_ns = _utc_ns(sched["close"])
    bs = _utc_ns(sched["break_start"])
    be = _utc_ns(sched["break_end"])
    has_break = bool((bs >= 0).any())
    early_days = (cal.early_closes.as_unit("ns").asi8 // NS_PER_DAY).astype(np.int32)
    early = np.isin(day, early_days)
    ok = (
        len(day) > 0
        and bool((open_ns < close_ns).all())
        and bool((close_ns[:-1] <= open_ns[1:]).all())
    )
    if not ok:
        raise DataError(
            f"calendar {xc_name!r} {first_year}-{last_year}: sessions are empty, overlap or "
            "are out of order; cannot place bars in them"
        )
    arrays = [day, open_ns, close_ns, early] + ([bs, be] if has_break else [])
    for a in arrays:
        a.flags.writeable = False
    return _Schedule(
        day=day,
        open_ns=open_ns,
        close_ns=close_ns,
        break_start_ns=bs if has_break else None,
        break_end_ns=be if has_break else None,
        early_close=early,
    )


def _locate(
    ts: np.ndarray,
    open_ns: np.ndarray,
    close_ns: np.ndarray,
    break_start_ns: np.ndarray | None = None,
    break_end_ns: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each ts, the index of the session containing it or else the next one, and whether
    it is inside (``open <= ts < close`` and not in ``[break_start, break_end)``).

    Sessions must be sorted and non-overlapping (``close[k] <= open[k+1]``). An index equal to
    ``len(open_ns)`` means no session at or after ts in the arrays given.
    """
    k = np.searchsorted(close_ns, ts, side="right")  # first session with close > ts
    kc = np.minimum(k, len(open_ns) - 1)
    inside = (k < len(open_ns)) & (open_ns[kc] <= ts)
    if break_start_ns is not None and break_end_ns is not None:
        bs, be = break_start_ns[kc], break_end_ns[kc]
        inside &= ~((bs >= 0) & (bs <= ts) & (ts < be))
    return k, inside


def _as_ts(ts_ns: np.ndarray) -> np.ndarray:
    ts = np.asarray(ts_ns)
    if ts.ndim != 1:
        raise DataError(f"ts_ns must be a 1-D array, got shape {ts.shape}", column="ts")
    if ts.dtype.kind not in "iu":
        raise DataError(f"ts_ns must be int64 ns UTC, got dtype {ts.dtype}", column="ts")
    return ts.astype(np.int64, copy=False)


def bar_sessions(ts_ns: np.ndarray, calendar: str) -> SessionArrays:
    """Place each bar timestamp (int64 ns UTC, any order) in ``calendar``'s sessions.

    Vectorised: one schedule load for the covered years (cached) and one ``np.searchsorted``.
    Raises ``ConfigError`` (key ``calendar``) for an unknown calendar and ``DataError`` for
    timestamps outside ``FIRST_YEAR``-``LAST_YEAR`` or a non-integer array.
    """
    _check_calendar(calendar)
    ts = _as_ts(ts_ns)
    n = len(ts)
    if n == 0:
        return SessionArrays(
            session=np.empty(0, np.int32),
            open_ns=np.empty(0, np.int64),
            close_ns=np.empty(0, np.int64),
            day=np.empty(0, np.int32),
        )
    lo, hi = int(ts.min()), int(ts.max())
    _check_range(lo, hi, calendar)
    if calendar == "ALWAYS":
        days = ts // NS_PER_DAY
        open_ns = days * NS_PER_DAY
        return SessionArrays(
            session=(days - days.min()).astype(np.int32),
            open_ns=open_ns,
            close_ns=open_ns + NS_PER_DAY,
            day=days.astype(np.int32),
        )
    sched = _schedule(calendar, *_years_for(lo, hi))
    k, inside = _locate(ts, sched.open_ns, sched.close_ns, sched.break_start_ns, sched.break_end_ns)
    if int(k.max()) >= len(sched.open_ns):  # cannot happen with the padding, unless a closure
        last = int(ts[k >= len(sched.open_ns)].max())  # runs for longer than _PAD_DAYS
        raise DataError(
            f"calendar {calendar!r}: no session found within {_PAD_DAYS} days after ts {last} "
            f"({np.datetime64(last, 'ns')} UTC)",
            column="ts",
        )
    session = (k - k.min()).astype(np.int32)
    session[~inside] = -1
    return SessionArrays(
        session=session,
        open_ns=sched.open_ns[k],
        close_ns=sched.close_ns[k],
        day=sched.day[k],
    )


def session_table(calendar: str, start_ns: int, end_ns: int) -> pl.DataFrame:
    """Sessions of ``calendar`` overlapping ``[start_ns, end_ns)``, one row each, in order.

    Columns: ``day`` (Int32, session date as days since 1970-01-01), ``open_ns`` and
    ``close_ns`` (Int64 ns UTC) and ``early_close`` (Boolean: closes before the regular time).
    """
    import polars as pl

    _check_calendar(calendar)
    start_ns, end_ns = int(start_ns), int(end_ns)
    if end_ns < start_ns:
        raise ConfigError("end_ns", f"end_ns {end_ns} is before start_ns {start_ns}")
    schema = {"day": pl.Int32, "open_ns": pl.Int64, "close_ns": pl.Int64, "early_close": pl.Boolean}
    if end_ns == start_ns:
        return pl.DataFrame(schema=schema)
    _check_range(start_ns, end_ns - 1, calendar)
    if calendar == "ALWAYS":
        days = np.arange(start_ns // NS_PER_DAY, (end_ns - 1) // NS_PER_DAY + 1, dtype=np.int64)
        day, open_ns = days.astype(np.int32), days * NS_PER_DAY
        close_ns, early = open_ns + NS_PER_DAY, np.zeros(len(days), bool)
    else:
        sched = _schedule(calendar, *_years_for(start_ns, end_ns - 1))
        keep = (sched.close_ns > start_ns) & (sched.open_ns < end_ns)
        day, open_ns = sched.day[keep], sched.open_ns[keep]
        close_ns, early = sched.close_ns[keep], sched.early_close[keep]
    return pl.DataFrame(
        {"day": day, "open_ns": open_ns, "close_ns": close_ns, "early_close": early},
        schema=schema,
    )
