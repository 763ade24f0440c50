"""Timestamps of logs and exports as int nanoseconds UTC, exactly and fold-aware.

Logs print local wall time; exports print ISO-8601 with nanoseconds (Alpaca) or compact
``20251212;095320`` stamps (IBKR). Everything here converts to int ns UTC without a float
in between, so a nanosecond survives a round trip.

Local times (no offset in the text) are read in a named IANA zone. A local time that a DST
change makes ambiguous (the repeated hour of a fall-back) is read as its first occurrence,
unless that would put it before the previous line of the same file while the second
occurrence would not: a log that runs through the repeated hour keeps its order. A local
time that does not exist (the skipped hour of a spring-forward) is an error. A time that
carries its own offset (``Z``, ``-06:00``, ``-0600``) is read with that offset, whatever the
zone: a log with mixed offsets reads correctly line by line.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Final

NS: Final = 1_000_000_000
_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()
_MONTHS: Final = {
    m: i + 1
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}
_OFFSET = r"(?P<offset>[Zz]|[+-]\d{2}(?::?\d{2})?)"
ISO_TIME_REGEX: Final = (
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[T ](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?\s*" + _OFFSET + "?"
)
"""ISO-8601 date and time, ``T`` or space separated, optional fraction and offset."""

_ISO = re.compile(ISO_TIME_REGEX)
_DIRECTIVES: Final[dict[str, str]] = {
    "Y": r"(?P<year>\d{4})",
    "y": r"(?P<year2>\d{2})",
    "m": r"(?P<month>\d{1,2})",
    "b": r"(?P<month>[A-Za-z]{3})",
    "d": r"(?P<day>\d{1,2})",
    "H": r"(?P<hour>\d{1,2})",
    "I": r"(?P<hour12>\d{1,2})",
    "p": r"(?P<ampm>[AaPp][Mm])",
    "M": r"(?P<minute>\d{2})",
    "S": r"(?P<second>\d{2})",
    "f": r"(?P<fraction>\d{1,9})",
    "z": _OFFSET,
    "%": "%",
}
TIME_GROUPS: Final = frozenset(
    {"year", "year2", "month", "day", "hour", "hour12", "ampm", "minute", "second"}
    | {"fraction", "offset"}
)
"""Named groups a ``time_regex`` may use; year, month, day, hour and minute are required."""


def time_format_regex(time_format: str) -> str:
    """Translate a strptime format (or ``"iso"``) into a regex with named time groups.

    Supported directives: ``%Y %y %m %b %d %H %I %p %M %S %f %z %%``; ``%f`` takes up to nine
    digits (nanoseconds). Raises ``ValueError`` naming an unsupported directive.
    """
    if time_format.strip().lower() == "iso":
        return ISO_TIME_REGEX
    out: list[str] = []
    i = 0
    while i < len(time_format):
        ch = time_format[i]
        if ch != "%":
            out.append(r"\s+" if ch == " " else re.escape(ch))
            i += 1
            continue
        if i + 1 >= len(time_format):
            raise ValueError("format ends with a lone '%'")
        directive = time_format[i + 1]
        if directive not in _DIRECTIVES:
            raise ValueError(f"unsupported strptime directive %{directive}")
        out.append(_DIRECTIVES[directive])
        i += 2
    return "".join(out)


def check_time_regex(pattern: re.Pattern[str]) -> None:
    """Refuse a time regex whose named groups cannot name one instant."""
    names = set(pattern.groupindex)
    unknown = names - TIME_GROUPS
    if unknown:
        raise ValueError(f"unknown time groups {sorted(unknown)}; allowed: {sorted(TIME_GROUPS)}")
    if not ({"year", "year2"} & names and {"month", "day", "minute"} <= names):
        raise ValueError("needs groups year (or year2), month, day, hour (or hour12) and minute")
    if not {"hour", "hour12"} & names:
        raise ValueError("needs an hour group (hour, or hour12 with ampm)")
    if "hour12" in names and "ampm" not in names:
        raise ValueError("a 12-hour clock (hour12) needs an ampm group")


def _offset_seconds(text: str) -> int:
    if text in ("Z", "z"):
        return 0
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"bad UTC offset {text!r}")
    return sign * (hours * 3600 + minutes * 60)


def _wall_seconds(y: int, mo: int, d: int, h: int, mi: int, s: int) -> int:
    """Seconds since the epoch of a wall time read as if it were UTC (validates the fields)."""
    if not (0 <= h <= 23 and 0 <= mi <= 59 and 0 <= s <= 59):
        raise ValueError(f"no such time of day {h:02d}:{mi:02d}:{s:02d}")
    days = dt.date(y, mo, d).toordinal() - _EPOCH_ORDINAL  # raises on a bad date
    return days * 86400 + h * 3600 + mi * 60 + s


class LocalZone:
    """Convert wall times of one IANA zone to UTC.

    Offsets are cached per hour, and per minute in the hours of a DST change.
    """

    __slots__ = ("_cache", "_hours", "name", "zone")

    def __init__(self, name: str) -> None:
        """Open zone ``name``; raises ``ValueError`` for a name zoneinfo does not know."""
        try:
            self.zone = zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}") from None
        self.name = name
        self._cache: dict[int, tuple[int, int]] = {}
        self._hours: dict[int, tuple[int, int]] = {}

    def offsets(self, wall: int) -> tuple[int, int]:
        """UTC offsets (seconds) of wall time ``wall`` read as its first and second occurrence.

        Equal for an ordinary time; different in the repeated or skipped hour of a DST change.
        """
        return self._offsets(wall // 60)

    def _offsets(self, wall_minute: int) -> tuple[int, int]:
        # An hour whose first and last minute have one unambiguous offset has it throughout
        # (zones change offset at most once an hour): cache it per hour; the hours of a DST
        # change are cached minute by minute.
        hour = wall_minute // 60
        cached = self._hours.get(hour) or self._cache.get(wall_minute)
        if cached is None:
            first = self._zone_offsets(hour * 60)
            last = self._zone_offsets(hour * 60 + 59)
            if first == last and first[0] == first[1]:
                self._hours[hour] = cached = first
            else:
                self._cache[wall_minute] = cached = self._zone_offsets(wall_minute)
        return cached

    def _zone_offsets(self, wall_minute: int) -> tuple[int, int]:
        naive = dt.datetime(1970, 1, 1) + dt.timedelta(minutes=wall_minute)
        offsets = []
        for fold in (0, 1):
            off = naive.replace(tzinfo=self.zone, fold=fold).utcoffset()
            offsets.append(int(off.total_seconds()) if off is not None else 0)
        return offsets[0], offsets[1]

    def to_utc_ns(self, wall: int, frac_ns: int, prev_ns: int | None) -> int:
        """UTC ns of wall time ``wall`` (seconds, read as UTC) + ``frac_ns`` in this zone.

        ``prev_ns`` is the previous timestamp of the same file: it decides which occurrence
        of an ambiguous wall time is meant (see the module docstring).
        """
        off0, off1 = self._offsets(wall // 60)
        first = (wall - off0) * NS + frac_ns
        if off0 == off1:
            return first
        if off0 < off1:
            raise ValueError(f"local time does not exist in {self.name} (skipped by a DST change)")
        second = (wall - off1) * NS + frac_ns
        if prev_ns is not None and first < prev_ns <= second:
            return second
        return first


class TimeReader:
    """Read the timestamps of one file through a regex with named time groups."""

    __slots__ = ("_fraction", "_prefix", "_regex", "local")

    def __init__(self, regex: re.Pattern[str], local: LocalZone) -> None:
        """Read times matching ``regex`` (checked by ``check_time_regex``) in zone ``local``."""
        self._regex = regex
        self.local = local
        self._fraction = regex.groupindex.get("fraction", 0)
        self._prefix: dict[str, tuple[int, int | None]] = {}

    def read(self, text: str, prev_ns: int | None = None) -> int:
        """Return the UTC ns of ``text``; raises ``ValueError`` when it is not a valid time."""
        stripped = text.strip()
        m = self._regex.fullmatch(stripped)
        if m is None:
            raise ValueError(f"time {text!r} does not match the time format")
        # Lines of one second share everything but the fraction: cache their wall seconds
        # and offset by the text without the fraction.
        frac_ns = 0
        key = stripped
        if self._fraction:
            start, end = m.span(self._fraction)
            if start >= 0:
                frac_ns = int(stripped[start:end].ljust(9, "0"))
                key = stripped[:start] + "\0" + stripped[end:]
        hit = self._prefix.get(key)
        if hit is None:
            g = m.groupdict()
            offset_text = g.get("offset")
            wall = self._wall(g)
            if offset_text:
                offset: int | None = _offset_seconds(offset_text)
            else:  # a local time: fix its offset now unless a DST change makes it ambiguous
                off0, off1 = self.local.offsets(wall)
                offset = off0 if off0 == off1 else None
            hit = (wall, offset)
            if len(self._prefix) > 4096:
                self._prefix.clear()
            self._prefix[key] = hit
        wall, offset = hit
        if offset is not None:
            return (wall - offset) * NS + frac_ns
        return self.local.to_utc_ns(wall, frac_ns, prev_ns)

    @staticmethod
    def _wall(g: dict[str, str | None]) -> int:
        year = g.get("year")
        y = int(year) if year else _two_digit_year(g["year2"] or "")
        month = g["month"] or ""
        mo = int(month) if month.isdigit() else _MONTHS.get(month.lower(), 0)
        if g.get("hour12") is not None:
            h = int(g["hour12"] or 0)
            if not 1 <= h <= 12:
                raise ValueError(f"12-hour clock hour {h} out of range")
            h = h % 12 + (12 if (g.get("ampm") or "").lower() == "pm" else 0)
        else:
            h = int(g["hour"] or 0)
        return _wall_seconds(
            y, mo, int(g["day"] or 0), h, int(g["minute"] or 0), int(g["second"] or 0)
        )


def _two_digit_year(text: str) -> int:
    yy = int(text)
    return 2000 + yy if yy < 69 else 1900 + yy


def parse_iso_ns(text: str, naive_zone: LocalZone | None = None) -> int:
    """Read an ISO-8601 timestamp (up to nanoseconds) as UTC ns.

    A timestamp without an offset is read in ``naive_zone``; without one it is an error,
    because guessing a zone shifts every event by hours.
    """
    m = _ISO.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}")
    if m.group("offset") is None and naive_zone is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset (write Z or +hh:mm)")
    reader = TimeReader(_ISO, naive_zone or _UTC)
    return reader.read(text)


_UTC = LocalZone("UTC")


def format_ns(ns: int, zone: LocalZone | None = None) -> str:
    """Write UTC ns as ISO-8601 in ``zone`` (UTC by default) with the shortest exact fraction."""
    seconds, frac = divmod(ns, NS)
    moment = dt.datetime.fromtimestamp(seconds, tz=(zone or _UTC).zone)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        digits = f"{frac:09d}"
        for width in (3, 6, 9):
            if int(digits[width:] or 0) == 0:
                text += "." + digits[:width]
                break
    off = moment.utcoffset() or dt.timedelta(0)
    total = int(off.total_seconds())
    if total == 0 and zone is None:
        return text + "Z"
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total) // 60, 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


def utc_zone() -> LocalZone:
    """Return the shared UTC zone."""
    return _UTC
