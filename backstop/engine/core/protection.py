"""The entry guard on protective levels: stop and target present, on the right sides, and
prices that can protect at all.

Split from ``decide.py`` (one idea per module): ``protection_nb`` judges the levels a signal
names (or the target the profile derives from ``target_r``) and returns the stop distance
the sizer needs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backstop.engine.core.codes import (
    R_MISSING_PROTECTION,
    R_PROTECTION_WRONG_SIDE,
    R_STOP_TOO_WIDE,
    R_TARGET_FROM_R,
)
from backstop.engine.core.riskslots import (
    ENT_MAX_PROTECTION,
    ENT_MAX_STOP_TICKS,
    ENT_REQUIRE_PROTECTION,
    ENT_TARGET_R,
)


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def sane_levels_nb(ev, ref: float, dist: float, target_px: float, target_pct: float, lim: float):
    """Whether every protective level the entry names is a price that protects.

    Seed 004's pipeline "produced non-positive protective levels": a stop of 0 (a missing
    value written as a number) is no stop. A stop or target at or below 0 (or given as a
    fraction of 1 or more on the side that goes down) is never protection; with
    ``entry.max_protection_pct`` set, neither is a level farther than that fraction from the
    entry price ``ref`` (a stop 60% away does not protect anything).
    """
    down_stop = ev.side > 0  # a long's stop and a short's target lie below the price
    if ev.stop_px == ev.stop_px and ev.stop_px <= 0:
        return False
    if target_px == target_px and target_px <= 0:
        return False
    if (ev.stop_pct >= 1 or ev.trail_pct >= 1) and down_stop:
        return False
    if target_pct >= 1 and not down_stop:
        return False
    if lim == lim and ref == ref and ref > 0:
        if dist == dist and dist > lim * ref * (1 + 1e-12):
            return False  # the stop, whether a price, a fraction or a trail
        if target_px == target_px and abs(target_px - ref) > lim * ref * (1 + 1e-12):
            return False
        if target_pct > lim * (1 + 1e-12):
            return False
    return True


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def protection_nb(ev, ref: float, tick: float, rp) -> tuple[int, float, float, float]:
    """Entry guard on the protective levels: return (reasons, stop distance per unit,
    target price to use, target fraction to use). The target may come from ``target_r``."""
    reasons = 0
    has_stop = ev.stop_px == ev.stop_px or ev.stop_pct > 0 or ev.trail_pct > 0
    target_px = ev.target_px
    target_pct = ev.target_pct
    if ev.stop_pct < 0 or ev.target_pct < 0 or ev.trail_pct < 0:
        reasons |= R_PROTECTION_WRONG_SIDE
    dist = np.nan
    if ref == ref:
        if ev.stop_px == ev.stop_px:
            if (ev.stop_px - ref) * ev.side >= 0:
                reasons |= R_PROTECTION_WRONG_SIDE
            dist = abs(ref - ev.stop_px)
        elif ev.stop_pct > 0:
            dist = ref * ev.stop_pct
        elif ev.trail_pct > 0:
            dist = ref * ev.trail_pct
        if target_px == target_px and (target_px - ref) * ev.side <= 0:
            reasons |= R_PROTECTION_WRONG_SIDE
    r_mult = rp[ENT_TARGET_R]
    if has_stop and target_px != target_px and target_pct <= 0 and r_mult == r_mult:
        if ev.stop_px != ev.stop_px and ev.stop_pct > 0:
            target_pct = r_mult * ev.stop_pct
            reasons |= R_TARGET_FROM_R
        elif dist == dist:
            target_px = ref + ev.side * r_mult * dist
            reasons |= R_TARGET_FROM_R
    has_target = target_px == target_px or target_pct > 0
    if rp[ENT_REQUIRE_PROTECTION] != 0.0 and not (has_stop and has_target):
        reasons |= R_MISSING_PROTECTION
    if not sane_levels_nb(ev, ref, dist, target_px, target_pct, rp[ENT_MAX_PROTECTION]):
        reasons |= R_MISSING_PROTECTION
    lim = rp[ENT_MAX_STOP_TICKS]
    if lim == lim and tick > 0 and dist == dist and dist / tick > lim + 1e-9:
        reasons |= R_STOP_TOO_WIDE
    return reasons, dist, target_px, target_pct
