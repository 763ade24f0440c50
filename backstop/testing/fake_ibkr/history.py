"""reqHistoricalData answers: the tape's bars up to the fake's clock, never later.

Served: ``whatToShow`` TRADES; bar size ``1 day`` (the tape's bars summed per New York day,
the current day's bar built from the bars delivered so far) and the tape's own bar size
(``1 min`` for a one-minute tape, ``5 mins``, ``15 mins``, ``1 hour``); ``endDateTime`` empty
(now) or ``YYYYMMDD HH:MM:SS`` with ``UTC``/a zone name/nothing (UTC), or
``YYYYMMDD-HH:MM:SS`` (UTC); durations ``N S|D|W|M|Y`` (a month is 30 days, a year 365).
Anything else raises ``HistoryRefused`` with the reason, answered as error 162.
Bars are labelled by their open time: epoch seconds for intraday bars, ``YYYYMMDD`` daily.
With ``keepUpToDate`` (end must be empty) each ``advance()`` then sends the new bar, or
today's daily bar so far, as a historicalDataUpdate until cancelHistoricalData.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from backstop.testing.fake_alpaca.tape import Bar, Tape, count_upto, ny_day

SIZES = {
    "1 min": 60,
    "2 mins": 120,
    "5 mins": 300,
    "15 mins": 900,
    "30 mins": 1800,
    "1 hour": 3600,
    "1 day": 86_400,
}
UNITS = {"S": 1, "D": 86_400, "W": 7 * 86_400, "M": 30 * 86_400, "Y": 365 * 86_400}
NS = 1_000_000_000


class HistoryRefused(Exception):
    """A historical request the fake does not serve; the message says what and why."""


def parse_time(text: str) -> int:
    """A TWS date-time as ns UTC: ``YYYYMMDD HH:MM:SS`` with ``UTC``, a zone name or nothing
    (UTC), or ``YYYYMMDD-HH:MM:SS`` (UTC)."""
    s = text.strip()
    try:
        if "-" in s[:9] and len(s) >= 17:
            when = dt.datetime.strptime(s[:17], "%Y%m%d-%H:%M:%S").replace(tzinfo=dt.UTC)
        else:
            parts = s.split(" ")
            when = dt.datetime.strptime(parts[0] + parts[1], "%Y%m%d%H:%M:%S")
            zone = parts[2] if len(parts) > 2 else "UTC"
            when = when.replace(tzinfo=dt.UTC if zone == "UTC" else ZoneInfo(zone))
    except (ValueError, IndexError, KeyError) as exc:
        raise HistoryRefused(f"{text!r} is not a date-time form the fake reads ({exc})") from None
    return int(when.timestamp()) * NS


def parse_end(text: str, now_ns: int) -> int:
    """The request's end as ns UTC, clipped to the fake's clock (no look-ahead)."""
    if not text.strip():
        return now_ns
    return min(now_ns, parse_time(text))


def parse_duration(text: str) -> int:
    """``N S|D|W|M|Y`` as nanoseconds."""
    parts = text.strip().split(" ")
    if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in UNITS:
        raise HistoryRefused(f"durationStr {text!r} is not 'N S|D|W|M|Y'")
    return int(parts[0]) * UNITS[parts[1]] * NS


def bar_size(text: str, tape: Tape) -> int:
    """The requested bar size in seconds, if the fake serves it for this tape."""
    size = SIZES.get(text.strip())
    native = tape.interval_ns // NS
    if size is None or (size != 86_400 and size != native):
        served = [k for k, v in SIZES.items() if v in (native, 86_400)]
        raise HistoryRefused(f"bar size {text!r} is not served (this tape serves {served})")
    return size


def daily(bars: list[Bar]) -> list[Bar]:
    """Bars summed per New York day: first open, highest high, lowest low, last close."""
    out: list[Bar] = []
    day = None
    for b in bars:
        d = ny_day(b.ts)
        if d != day:
            out.append(b)
            day = d
            continue
        last = out[-1]
        out[-1] = Bar(
            last.ts,
            last.symbol,
            last.open,
            max(last.high, b.high),
            min(last.low, b.low),
            b.close,
            last.volume + b.volume,
        )
    return out


def select(
    tape: Tape, symbol: str, now_ns: int, end: str, duration: str, size: str, what: str
) -> tuple[list[Bar], int, int, bool]:
    """The bars answering one request: (bars, start ns, end ns, daily?)."""
    if what.upper() != "TRADES":
        raise HistoryRefused(f"whatToShow {what!r} is not served (only TRADES)")
    step = bar_size(size, tape)
    end_ns = parse_end(end, now_ns)
    start_ns = end_ns - parse_duration(duration)
    mine = tape.by_symbol.get(symbol, [])
    upto = mine[: count_upto(mine, end_ns)]
    if step == 86_400 and tape.interval_ns != 86_400 * NS:
        upto = daily(upto)
        start_day = ny_day(start_ns)
        return [b for b in upto if ny_day(b.ts) > start_day], start_ns, end_ns, True
    return [b for b in upto if b.ts > start_ns], start_ns, end_ns, step == 86_400


def latest(tape: Tape, symbol: str, now_ns: int, daily_bars: bool) -> Bar | None:
    """The bar a keepUpToDate subscription gets at ``now``: the symbol's bar stamped ``now``
    (None when it has none then), or today's daily bar built from the bars so far."""
    mine = tape.by_symbol.get(symbol, [])
    upto = mine[: count_upto(mine, now_ns)]
    if not upto:
        return None
    if daily_bars and tape.interval_ns != 86_400 * NS:
        today = ny_day(now_ns)
        k = len(upto)
        while k > 0 and ny_day(upto[k - 1].ts) == today:
            k -= 1
        return daily(upto[k:])[-1] if k < len(upto) else None
    return upto[-1] if upto[-1].ts == now_ns else None
