"""Integer timestamps: the unit read from their magnitude, and the int64-nanosecond range.

Files and frames give epoch timestamps as integers in seconds, milliseconds, microseconds or
nanoseconds, with nothing saying which. Reading milliseconds as nanoseconds puts every bar in
January 1970 and still "works", so the unit is decided from the magnitude, by one rule that
the README states (``--data``):

=====================  ===========  ==========================================
largest absolute value  unit         dates it covers
=====================  ===========  ==========================================
below 1e11              seconds      1970 .. 2262 (past 2262-04-11 is refused)
1e11 .. below 1e14      ms           1973-03-03 .. 5138
1e14 .. below 1e17      us           1973-03-03 .. 5138
1e17 and above          ns           1973-03-03 .. 2262-04-11
=====================  ===========  ==========================================

A column is read in one unit (that of its largest absolute value); a column whose values span
more than one of these bands (seconds on some rows, milliseconds on others) is refused rather
than half-converted. A value whose time does not fit int64 nanoseconds (after 2262-04-11 or
before 1677-09-21) is refused, never wrapped around.
"""

from __future__ import annotations

INT64_MAX = 2**63 - 1
SECONDS_BELOW = 10**11
MILLIS_BELOW = 10**14
MICROS_BELOW = 10**17

UNITS: tuple[tuple[str, int, int], ...] = (
    # (name, nanoseconds per unit, values below this (absolute) are in this unit)
    ("seconds", 1_000_000_000, SECONDS_BELOW),
    ("milliseconds", 1_000_000, MILLIS_BELOW),
    ("microseconds", 1_000, MICROS_BELOW),
    ("nanoseconds", 1, INT64_MAX),
)

UNIT_RULE = (
    "integer timestamps are read as seconds below 1e11, milliseconds below 1e14, "
    "microseconds below 1e17, nanoseconds above"
)


def unit_of(value: int) -> tuple[str, int]:
    """The unit (name, ns per unit) that the magnitude rule gives an integer timestamp."""
    magnitude = abs(int(value))
    for name, factor, below in UNITS:
        if magnitude < below:
            return name, factor
    return UNITS[-1][0], UNITS[-1][1]


def to_ns(value: int) -> int | None:
    """One integer timestamp in nanoseconds by the magnitude rule; None when it overflows."""
    _, factor = unit_of(value)
    ns = int(value) * factor
    return ns if -INT64_MAX - 1 <= ns <= INT64_MAX else None
