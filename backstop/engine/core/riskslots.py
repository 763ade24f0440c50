"""Every risk-profile key, its slot in the kernels' parameter array, default and bounds.

One table drives three things so they cannot drift apart: the TOML validation of profiles
(unknown key or bad value -> an error naming the key and file), the README's profile table,
and the kernels, which read ``risk[SLOT]`` from one float64 array. A key that is absent from a
profile and has no default is *off* and its slot holds NaN; kernels test ``limit == limit``
(not NaN) before applying it.

Money is in account currency, fractions are 0..1 (0.05 = 5%), times in seconds or minutes as
the key says, conviction 0..100.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class RiskKey:
    """One profile key: ``section.name``, its kind, default (None = off) and allowed range."""

    key: str
    kind: str  # "float", "int", "bool" or "choice"
    default: float | int | bool | str | None
    lo: float = -math.inf
    hi: float = math.inf
    help: str = ""
    choices: tuple[str, ...] = ()


OFF = None
_INF = math.inf

RISK_KEYS: tuple[RiskKey, ...] = (
    # advisory gate
    RiskKey("advisory.block_on_wait", "bool", True, help="a WAIT advisory blocks the signal"),
    RiskKey(
        "advisory.override_min_conviction",
        "float",
        OFF,
        0,
        100,
        "a signal with at least this conviction overrides WAIT (journaled as overridden)",
    ),
    RiskKey("advisory.wait_blocks_exits", "bool", True, help="WAIT also blocks exit signals"),
    RiskKey(
        "advisory.ttl_seconds",
        "float",
        300.0,
        0,
        _INF,
        "an advisory applies to its symbol's signals up to this long after it",
    ),
    # entry guard
    RiskKey(
        "entry.require_protection",
        "bool",
        False,
        help="refuse entries without both a protective stop and a target",
    ),
    RiskKey(
        "entry.max_stop_ticks",
        "float",
        OFF,
        0,
        _INF,
        "largest stop distance from the entry price, in ticks",
    ),
    RiskKey(
        "entry.max_loss_per_trade",
        "float",
        OFF,
        0,
        _INF,
        "largest loss at the stop (qty x distance x multiplier), in money",
    ),
    RiskKey(
        "entry.max_protection_pct",
        "float",
        OFF,
        0,
        _INF,
        "a stop or target farther than this fraction from the entry price is no protection",
    ),
    RiskKey(
        "entry.target_r",
        "float",
        OFF,
        0,
        _INF,
        "entries with a stop but no target get a target at this R-multiple of the stop",
    ),
    # sizer
    RiskKey(
        "sizer.kind",
        "choice",
        "fixed",
        help="fixed, pct_equity or risk",
        choices=("fixed", "pct_equity", "risk"),
    ),
    RiskKey("sizer.qty", "float", 100.0, 0, _INF, "fixed: units per entry"),
    RiskKey(
        "sizer.pct_equity", "float", 0.10, 0, 1, "pct_equity: notional as a fraction of equity"
    ),
    RiskKey(
        "sizer.risk_pct",
        "float",
        0.01,
        0,
        1,
        "risk: money lost at the stop as a fraction of equity",
    ),
    RiskKey(
        "sizer.conviction_full",
        "float",
        OFF,
        0,
        100,
        "risk/pct sizing: conviction at or above this gets the full size",
    ),
    RiskKey(
        "sizer.conviction_half",
        "float",
        OFF,
        0,
        100,
        "conviction at or above this (below full) gets half; below it is refused",
    ),
    RiskKey("sizer.max_qty", "float", OFF, 0, _INF, "sized quantity capped at this (modifies)"),
    RiskKey(
        "sizer.honour_target_dollars",
        "bool",
        True,
        help="a signal's target_dollars sets its notional (the signal source sized it)",
    ),
    # risk gate: account and strategy state
    RiskKey("risk.min_data_quality", "float", OFF, 0, 1, "refuse entries on bars scored below"),
    RiskKey(
        "risk.market_hours",
        "bool",
        False,
        help="refuse entries outside the exchange calendar's sessions",
    ),
    RiskKey(
        "risk.daily_loss_pct",
        "float",
        OFF,
        0,
        1,
        "refuse entries once realized + unrealized loss today exceeds this of day-start equity",
    ),
    RiskKey("risk.daily_loss_dollars", "float", OFF, 0, _INF, "the same limit in money"),
    RiskKey("risk.max_trades_per_day", "int", OFF, 0, _INF, "entries per strategy per day"),
    RiskKey("risk.max_trades_per_day_account", "int", OFF, 0, _INF, "entries per account per day"),
    RiskKey(
        "risk.daily_allocation",
        "float",
        OFF,
        0,
        _INF,
        "notional a strategy may commit to entries per day, in money",
    ),
    RiskKey("risk.max_positions", "int", OFF, 0, _INF, "concurrent open positions (account)"),
    RiskKey(
        "risk.allow_add_to_winner",
        "bool",
        False,
        help="an entry may add to a same-side position that is in profit",
    ),
    RiskKey(
        "risk.max_single_name_pct",
        "float",
        OFF,
        0,
        _INF,
        "one symbol's notional after the entry, as a fraction of equity",
    ),
    RiskKey(
        "risk.max_sector_pct",
        "float",
        OFF,
        0,
        _INF,
        "one sector's notional after the entry, as a fraction of equity",
    ),
    RiskKey("risk.min_equity", "float", OFF, 0, _INF, "refuse entries below this equity (PDT)"),
    RiskKey(
        "risk.buying_power_mult",
        "float",
        OFF,
        0,
        _INF,
        "gross notional after the entry may not exceed equity x this",
    ),
    RiskKey(
        "risk.shrink_to_fit",
        "bool",
        True,
        help="an entry past the single-name, sector or buying-power limit is shrunk to fit",
    ),
    RiskKey(
        "risk.max_consecutive_losses",
        "int",
        OFF,
        1,
        _INF,
        "after this many losses in a row a strategy is locked out for the day",
    ),
    RiskKey(
        "risk.drawdown_halt_pct",
        "float",
        OFF,
        0,
        1,
        "drawdown from peak equity that halts entries until a manual reset",
    ),
    RiskKey(
        "risk.circuit_loss_pct",
        "float",
        OFF,
        0,
        1,
        "daily loss (of day-start equity) that pauses entries for circuit_hours",
    ),
    RiskKey("risk.circuit_hours", "float", 24.0, 0, _INF, "length of the daily-loss pause"),
    RiskKey(
        "risk.strategy_capital",
        "float",
        OFF,
        0,
        _INF,
        "a strategy table's own halts and daily loss judge its P&L on this capital "
        "(off: the account's starting equity)",
    ),
    RiskKey(
        "risk.new_signals_only",
        "bool",
        False,
        help="refuse signals whose source id is not above the strategy's cursor",
    ),
    RiskKey(
        "risk.source_cursor",
        "int",
        OFF,
        -1,
        _INF,
        "cold start: the highest source id already handled (older ones are stale)",
    ),
    # erroneous-order controls (SEC 15c3-5, FIA safeguards)
    RiskKey("orders.max_qty", "float", OFF, 0, _INF, "largest quantity of one order"),
    RiskKey("orders.max_notional", "float", OFF, 0, _INF, "largest notional of one order"),
    RiskKey(
        "orders.price_collar_pct",
        "float",
        OFF,
        0,
        _INF,
        "a limit or stop price this far (fraction) from the last price is refused",
    ),
    RiskKey(
        "orders.max_per_minute",
        "int",
        OFF,
        1,
        _INF,
        "orders sent in any 60 s window (a runaway loop stops here)",
    ),
    # exit manager
    RiskKey(
        "exits.time_stop_minutes",
        "float",
        OFF,
        0,
        _INF,
        "close a position open this long without progress",
    ),
    RiskKey(
        "exits.time_stop_min_r",
        "float",
        0.0,
        -_INF,
        _INF,
        "progress needed to stay in, in R (unrealized / initial risk)",
    ),
    RiskKey(
        "exits.eod_minutes_before_close",
        "float",
        OFF,
        0,
        24 * 60,
        "force-close positions this many minutes before the session close",
    ),
    RiskKey(
        "exits.vol_exit_mult",
        "float",
        OFF,
        0,
        _INF,
        "close when a bar's range exceeds this many average ranges",
    ),
    RiskKey("exits.vol_lookback", "int", 14, 1, 10_000, "bars in the average range"),
    # kill switch triggers
    RiskKey("kill.daily_loss_pct", "float", OFF, 0, 1, "daily loss that trips the kill switch"),
    RiskKey("kill.daily_loss_dollars", "float", OFF, 0, _INF, "the same trigger in money"),
    RiskKey("kill.min_equity", "float", OFF, 0, _INF, "equity below this trips the kill switch"),
    RiskKey(
        "kill.consecutive_losses",
        "int",
        OFF,
        1,
        _INF,
        "this many losses in a row, each worse than loss_pct, trip it",
    ),
    RiskKey(
        "kill.loss_pct",
        "float",
        0.0,
        0,
        1,
        "a loss counts towards consecutive_losses if worse than this of equity",
    ),
    RiskKey(
        "kill.disconnect_seconds",
        "float",
        OFF,
        0,
        _INF,
        "broker connection lost this long trips it",
    ),
    RiskKey("kill.min_data_quality", "float", OFF, 0, 1, "a bar scored below this trips it"),
    RiskKey("kill.flatten", "bool", True, help="activation flattens open positions"),
    # learning loop
    RiskKey("learning.enabled", "bool", False, help="per-strategy throttle and quarantine"),
    RiskKey("learning.min_trades", "int", 5, 1, _INF, "closed trades before rates are judged"),
    RiskKey("learning.win_rate_floor", "float", 0.40, 0, 1, "below it the strategy is throttled"),
    RiskKey("learning.throttle_factor", "float", 0.5, 0, 1, "size multiplier while throttled"),
    RiskKey(
        "learning.quarantine_losses",
        "int",
        2,
        1,
        _INF,
        "consecutive losses that quarantine the strategy",
    ),
    RiskKey(
        "learning.quarantine_on_negative_expectancy",
        "bool",
        True,
        help="negative expectancy (after min_trades) quarantines",
    ),
    RiskKey(
        "learning.reenable_shadow_wins",
        "int",
        2,
        1,
        _INF,
        "shadow wins in a row that re-enable a quarantined strategy",
    ),
    # execution quality (seed 001's EQS gate)
    RiskKey(
        "execution.max_slippage_bps",
        "float",
        OFF,
        0,
        _INF,
        "refuse a strategy's entries while its entry fills slip more than this on average",
    ),
    RiskKey(
        "execution.window",
        "int",
        20,
        1,
        10_000,
        "entry fills in the average (exponential, this span), newest weighing most",
    ),
    RiskKey("execution.min_fills", "int", 5, 1, _INF, "entry fills before the gate judges"),
    # run checks (read after the run, not by the kernels)
    RiskKey(
        "checks.min_order_share",
        "float",
        0.5,
        0,
        1,
        "--check fails when a strategy's share of signals that became orders is below this",
    ),
)

SLOT: dict[str, int] = {k.key: i for i, k in enumerate(RISK_KEYS)}
N_RISK = len(RISK_KEYS)
SIZER_KINDS = ("fixed", "pct_equity", "risk")


def _s(key: str) -> np.int64:
    return np.int64(SLOT[key])


ADV_BLOCK_ON_WAIT = _s("advisory.block_on_wait")
ADV_OVERRIDE_CONVICTION = _s("advisory.override_min_conviction")
ADV_WAIT_BLOCKS_EXITS = _s("advisory.wait_blocks_exits")
ADV_TTL_S = _s("advisory.ttl_seconds")
ENT_REQUIRE_PROTECTION = _s("entry.require_protection")
ENT_MAX_STOP_TICKS = _s("entry.max_stop_ticks")
ENT_MAX_LOSS = _s("entry.max_loss_per_trade")
ENT_MAX_PROTECTION = _s("entry.max_protection_pct")
ENT_TARGET_R = _s("entry.target_r")
SZ_KIND = _s("sizer.kind")
SZ_QTY = _s("sizer.qty")
SZ_PCT = _s("sizer.pct_equity")
SZ_RISK_PCT = _s("sizer.risk_pct")
SZ_CONV_FULL = _s("sizer.conviction_full")
SZ_CONV_HALF = _s("sizer.conviction_half")
SZ_MAX_QTY = _s("sizer.max_qty")
SZ_TARGET_DOLLARS = _s("sizer.honour_target_dollars")
RK_MIN_DQ = _s("risk.min_data_quality")
RK_MARKET_HOURS = _s("risk.market_hours")
RK_DAILY_LOSS_PCT = _s("risk.daily_loss_pct")
RK_DAILY_LOSS_USD = _s("risk.daily_loss_dollars")
RK_TRADES_DAY = _s("risk.max_trades_per_day")
RK_TRADES_DAY_ACCT = _s("risk.max_trades_per_day_account")
RK_DAILY_ALLOC = _s("risk.daily_allocation")
RK_MAX_POSITIONS = _s("risk.max_positions")
RK_ADD_TO_WINNER = _s("risk.allow_add_to_winner")
RK_SINGLE_NAME = _s("risk.max_single_name_pct")
RK_SECTOR = _s("risk.max_sector_pct")
RK_MIN_EQUITY = _s("risk.min_equity")
RK_BP_MULT = _s("risk.buying_power_mult")
RK_SHRINK = _s("risk.shrink_to_fit")
RK_MAX_CONSEC_LOSSES = _s("risk.max_consecutive_losses")
RK_DRAWDOWN_HALT = _s("risk.drawdown_halt_pct")
RK_CIRCUIT_PCT = _s("risk.circuit_loss_pct")
RK_CIRCUIT_HOURS = _s("risk.circuit_hours")
RK_STRATEGY_CAPITAL = _s("risk.strategy_capital")
RK_NEW_ONLY = _s("risk.new_signals_only")
OR_MAX_QTY = _s("orders.max_qty")
OR_MAX_NOTIONAL = _s("orders.max_notional")
OR_COLLAR = _s("orders.price_collar_pct")
OR_PER_MINUTE = _s("orders.max_per_minute")
EX_TIME_STOP_MIN = _s("exits.time_stop_minutes")
EX_TIME_STOP_R = _s("exits.time_stop_min_r")
EX_EOD_MIN = _s("exits.eod_minutes_before_close")
EX_VOL_MULT = _s("exits.vol_exit_mult")
EX_VOL_LOOKBACK = _s("exits.vol_lookback")
KL_DAILY_LOSS_PCT = _s("kill.daily_loss_pct")
KL_DAILY_LOSS_USD = _s("kill.daily_loss_dollars")
KL_MIN_EQUITY = _s("kill.min_equity")
KL_CONSEC = _s("kill.consecutive_losses")
KL_LOSS_PCT = _s("kill.loss_pct")
KL_DISCONNECT_S = _s("kill.disconnect_seconds")
KL_MIN_DQ = _s("kill.min_data_quality")
KL_FLATTEN = _s("kill.flatten")
EQ_MAX_SLIP = _s("execution.max_slippage_bps")
EQ_WINDOW = _s("execution.window")
EQ_MIN_FILLS = _s("execution.min_fills")
LN_ENABLED = _s("learning.enabled")
LN_MIN_TRADES = _s("learning.min_trades")
LN_WIN_FLOOR = _s("learning.win_rate_floor")
LN_THROTTLE = _s("learning.throttle_factor")
LN_Q_LOSSES = _s("learning.quarantine_losses")
LN_Q_NEG_EXP = _s("learning.quarantine_on_negative_expectancy")
LN_REENABLE = _s("learning.reenable_shadow_wins")
