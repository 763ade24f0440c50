"""The scalar parameters every kernel reads, as one NamedTuple (a numba-friendly record)."""

from __future__ import annotations

from typing import NamedTuple


class SimParams(NamedTuple):
    """Fill and cost parameters of a run, already validated and mapped to ints."""

    slip_kind: int  # 0 none, 1 ticks, 2 bps
    slip_value: float
    fee_kind: int  # 0 zero, 1 per share with minimum, 2 per contract, 3 percent of notional
    fee_rate: float
    fee_min: float
    max_participation: float  # fraction of a bar's volume one symbol's fills may take; 0 = off
    intrabar: int  # ambiguous bars: 0 stop first, 1 target first, 2 nearest to the open first
    legs_live_on_entry_bar: bool
    max_working: int


INTRABAR_STOP_FIRST = 0
INTRABAR_TARGET_FIRST = 1
INTRABAR_OPEN_PROXIMITY = 2
