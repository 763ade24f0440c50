"""EMA clouds (seed 002, PRD-135's executor over PRD-134's cloud signals).

Three clouds of exponential averages of the close: the fast cloud (5/12), the pullback cloud
(8/9) and the macro cloud (34/50). A cloud is bullish when its shorter average is above its
longer one; its edges are the two averages.

Entry (long; shorts mirror it with ``shorts=1``): the fast cloud turns bullish at a bar's close
(EMA5 above EMA12, at or below it the bar before) while the macro cloud is bullish and the
close is above it. Conviction (the seed's 0-100 score; PRD-134 is not in the seeds, so this
is our reading): 50 for that setup, +25 when the pullback cloud agrees, +25 when the bar's
volume is confirmed (above ``vol_mult`` times the average of the ``vol_lookback`` bars
before it). The seed's entry table then picks the order:

- high conviction (>= ``high_conviction``) with volume confirmed: market order;
- otherwise, conviction >= ``medium_conviction``: a day limit at the pullback cloud's near
  edge (the higher average for a long), never above the close: "wait for pullback";
- ``scale_in=1`` (any conviction >= medium): half at market now and half as a limit at the
  pullback cloud's near edge (``scale_in_pct``), cancelled by the pipeline if the first half
  is stopped out ("add half on first pullback to cloud that holds"). Not with swing
  trades: the pipeline trails one stop leg of a position, and an add has its own.

Every entry carries its conviction (the profile's sizer tiers read it), a protective stop at
the macro cloud's far edge (the lower average for a long: the price at which "price closes
below macro cloud" has certainly happened) and a target at ``reward_risk`` R from the entry
price (2:1). ``qty=0`` leaves the size to the profile's sizer.

Exits (seed 002's priority table): the stop and target are broker legs and act inside a bar,
before any rule below can be judged at its close; the rules judged at a bar's close are, by
their seed number: 1 the close beyond the macro cloud's far edge (``thesis_invalidation``),
2 momentum exhaustion: ``exhaustion_bars`` or more closes in a row outside the fast cloud
with the trade's colour (close above the open and above the cloud for a long)
(``momentum_exhaustion``), 3 fast-cloud flip (EMA5 below EMA12 for a long) (``cloud_flip``),
5 time stop: open ``time_stop_minutes`` or longer and not in profit at the close
(``time_stop``; day and scalp trades), 6 end-of-day close: the bar that ends at or after
``eod_minute`` New York time (955 = 15:55) (``eod_close``; day trades only, and no day
trade is opened at or after that minute). When several
hold at one close, the first in ``exit_priority`` names the exit: its digits list the rules
in order (default 12356, the seed's); a rule left out is off. 7 trailing (swing trades): at
each close the stop moves to the pullback cloud's far edge when that tightens it (stop-update
rows; the pipeline journals each move). ``trade_type`` is 0 day, 1 swing or 2 scalp; every
entry carries it, so a profile's end-of-day close (``exits.eod_minutes_before_close``) closes
day trades only, as the strategy's own rule 6 does.

The trade the exits watch is the strategy's own model of it (``backstop.strategies.book``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from backstop.domain.enums import OrderRole, OrderType, TimeInForce
from backstop.errors import ConfigError, check
from backstop.strategies.base import Param, Strategy, register
from backstop.strategies.book import (
    LONG,
    SHORT,
    Lot,
    Rows,
    Trade,
    bar_step_ns,
    ema,
    ny_clock,
    symbol_runs,
)

DAY, SWING, SCALP = 0, 1, 2
RULE_MACRO, RULE_EXHAUSTION, RULE_FLIP, RULE_TIME, RULE_EOD = 1, 2, 3, 5, 6
RULE_REASONS = {
    RULE_MACRO: OrderRole.THESIS_INVALIDATION,
    RULE_EXHAUSTION: OrderRole.MOMENTUM_EXHAUSTION,
    RULE_FLIP: OrderRole.CLOUD_FLIP,
    RULE_TIME: OrderRole.TIME_STOP,
    RULE_EOD: OrderRole.EOD_CLOSE,
}
MINUTE_NS = 60_000_000_000


def exit_rules(priority: int) -> tuple[int, ...]:
    """The close-judged exit rules in the order ``exit_priority``'s digits give."""
    digits = tuple(int(c) for c in str(int(priority)))
    check(
        len(set(digits)) == len(digits) and set(digits) <= set(RULE_REASONS),
        ConfigError(
            "exit_priority",
            f"must list rules 1 (macro), 2 (exhaustion), 3 (cloud flip), 5 (time stop), "
            f"6 (EOD) at most once each, got {priority}",
        ),
    )
    return digits


class _Lines:
    """The per-bar lines the rules read, as numpy arrays over all rows."""

    def __init__(self, bars: pl.DataFrame, p: dict[str, Any]) -> None:
        self.open = bars.get_column("open").to_numpy()
        self.high = bars.get_column("high").to_numpy()
        self.low = bars.get_column("low").to_numpy()
        self.close = bars.get_column("close").to_numpy()
        self.ts = bars.get_column("ts").to_numpy()
        self.fast = (ema(bars, p["fast_short"]), ema(bars, p["fast_long"]))
        self.pull = (ema(bars, p["pullback_short"]), ema(bars, p["pullback_long"]))
        self.macro = (ema(bars, p["macro_short"]), ema(bars, p["macro_long"]))
        avg = (
            bars.select(
                pl.col("volume")
                .shift(1)
                .rolling_mean(int(p["vol_lookback"]))
                .over("symbol")
                .fill_null(np.nan)
            )
            .to_series()
            .to_numpy()
        )
        self.volume_ok = bars.get_column("volume").to_numpy() > p["vol_mult"] * avg
        self.minute, self.day = ny_clock(bars)

    def trend(self, cloud: tuple[np.ndarray, np.ndarray], i: int) -> int:
        """+1 bullish, -1 bearish, 0 when the two averages are equal."""
        return int(np.sign(cloud[0][i] - cloud[1][i]))

    def near(self, cloud: tuple[np.ndarray, np.ndarray], i: int, side: int) -> float:
        """The edge a pullback reaches first: the higher average for a long."""
        a, b = cloud[0][i], cloud[1][i]
        return float(max(a, b) if side == LONG else min(a, b))

    def far(self, cloud: tuple[np.ndarray, np.ndarray], i: int, side: int) -> float:
        """The edge beyond which the cloud is left: the lower average for a long."""
        a, b = cloud[0][i], cloud[1][i]
        return float(min(a, b) if side == LONG else max(a, b))


def ema_clouds_intents(bars: pl.DataFrame, **p: Any) -> pl.DataFrame:
    """Entries, exits and trailing stop updates of every symbol (see the module)."""
    lines = _Lines(bars, p)
    rows = Rows(bars)
    rules = exit_rules(p["exit_priority"])
    for run in symbol_runs(bars):
        _walk(run, lines, rows, rules, p)
    return rows.frame()


def _walk(run: np.ndarray, x: _Lines, rows: Rows, rules: tuple[int, ...], p: dict) -> None:
    """One symbol's bars in time order: play the modelled trade, manage it, or look for one."""
    step = bar_step_ns(x.ts[run])
    trade: Trade | None = None
    streak = 0  # closes in a row outside the fast cloud with the trade's colour
    warm = int(max(p["macro_long"], p["fast_long"], p["pullback_long"]))
    for k, i in enumerate(run):
        side = trade.side if trade is not None else LONG
        if trade is not None:
            trade.step(i, x.ts[i], x.day[i], x.open[i], x.high[i], x.low[i])
        outside = (x.close[i] - x.near(x.fast, i, side)) * side > 0
        coloured = (x.close[i] - x.open[i]) * side > 0
        streak = streak + 1 if outside and coloured else 0
        if trade is not None and trade.open:
            rule = _first_rule(rules, x, i, trade, streak, step, p)
            if rule:
                rows.exit(i, side, RULE_REASONS[rule])
                trade.close()
            elif p["trade_type"] == SWING:
                level = x.far(x.pull, i, side)
                if (level - trade.stop) * side > 0 and (x.close[i] - level) * side > 0:
                    rows.stop_update(i, level)
                    trade.stop = level
            continue
        if (trade is not None and trade.live) or k < warm:
            continue
        if p["trade_type"] == DAY and x.minute[i] + step // MINUTE_NS >= p["eod_minute"]:
            continue  # a day trade is not opened after its close time
        trade = _entry(x, i, rows, p)


def _first_rule(
    rules: tuple[int, ...],
    x: _Lines,
    i: int,
    trade: Trade,
    streak: int,
    step: int,
    p: dict,
) -> int:
    """The first close-judged exit rule (in priority order) that holds at bar ``i``; 0: none."""
    side = trade.side
    for rule in rules:
        if rule == RULE_MACRO:
            hit = (x.close[i] - x.far(x.macro, i, side)) * side < 0
        elif rule == RULE_EXHAUSTION:
            hit = streak >= p["exhaustion_bars"]
        elif rule == RULE_FLIP:
            hit = x.trend(x.fast, i) == -side
        elif rule == RULE_TIME:
            held = x.ts[i] + step - trade.filled_at
            hit = (
                p["trade_type"] != SWING
                and held >= p["time_stop_minutes"] * MINUTE_NS
                and (x.close[i] - trade.entry_px) * side <= 0
            )
        else:
            ends = x.minute[i] + step // MINUTE_NS
            hit = p["trade_type"] == DAY and ends >= p["eod_minute"]
        if hit:
            return rule
    return 0


def _entry(x: _Lines, i: int, rows: Rows, p: dict) -> Trade | None:
    """Decide the entry at bar ``i``'s close: its row, and the trade it starts (or None)."""
    flip = x.trend(x.fast, i)
    before = int(np.sign(x.fast[0][i - 1] - x.fast[1][i - 1]))
    if flip == 0 or before == flip or (flip == SHORT and not p["shorts"]):
        return None
    side = flip
    if x.trend(x.macro, i) != side or (x.close[i] - x.near(x.macro, i, side)) * side <= 0:
        return None
    conviction = 50.0 + 25.0 * (x.trend(x.pull, i) == side) + 25.0 * bool(x.volume_ok[i])
    if conviction < p["medium_conviction"]:
        return None
    close = float(x.close[i])
    edge = x.near(x.pull, i, side)
    edge = min(edge, close) if side == LONG else max(edge, close)
    stop = x.far(x.macro, i, side)
    fields: dict[str, Any] = {"conviction": conviction, "trade_type": int(p["trade_type"])}
    if p["qty"] > 0:
        fields["qty"] = float(p["qty"])
    lots = [Lot(np.nan)]
    ref = close
    if p["scale_in"]:
        otype = OrderType.MARKET
        back = (close - edge) * side / close
        if back > 0 and (edge - stop) * side > 0:  # an add at or beyond the stop: none
            fields["scale_in_pct"] = back
            lots.append(Lot(close * (1.0 - side * back)))
    elif conviction >= p["high_conviction"] and x.volume_ok[i]:
        otype = OrderType.MARKET
    else:
        otype, ref = OrderType.LIMIT, edge
        fields |= {"limit_px": edge, "tif": int(TimeInForce.DAY)}
        lots = [Lot(edge, day_order=True)]
    if (ref - stop) * side <= 0:
        return None  # the macro cloud is not behind the entry: no risk to size on
    target = ref + p["reward_risk"] * (ref - stop)
    rows.entry(i, side, otype=int(otype), stop_px=stop, target_px=target, **fields)
    return Trade(side, stop, target, lots)


def _check(params: dict[str, Any]) -> None:
    """Each cloud's short average must be the shorter; the exit order must be valid."""
    for cloud in ("fast", "pullback", "macro"):
        short, long_ = params[f"{cloud}_short"], params[f"{cloud}_long"]
        check(
            short < long_,
            ConfigError(
                f"{cloud}_short",
                f"must be shorter than {cloud}_long ({short} >= {long_}): a cloud is a shorter "
                "average against a longer one",
            ),
        )
    check(
        params["medium_conviction"] <= params["high_conviction"],
        ConfigError("medium_conviction", "must not be above high_conviction"),
    )
    exit_rules(params["exit_priority"])
    check(
        not (params["scale_in"] and params["trade_type"] == SWING),
        ConfigError(
            "scale_in",
            "cannot trail a swing trade held in two lots: a stop update moves one working "
            "stop leg, and the add's legs keep the entry's first stop (use scale_in=0 for "
            "swing trades)",
        ),
    )


def _bars_needed(params: dict[str, Any]) -> tuple[str, int]:
    """No entry before the macro cloud has seen ``macro_long`` closes."""
    return "macro_long", int(params["macro_long"]) + 1


EMA_CLOUDS = register(
    Strategy(
        name="ema_clouds",
        fn=ema_clouds_intents,
        params=(
            Param("fast_short", int, 5, minimum=1, help="fast cloud: shorter EMA (bars)"),
            Param("fast_long", int, 12, minimum=2, help="fast cloud: longer EMA (bars)"),
            Param("pullback_short", int, 8, minimum=1, help="pullback cloud: shorter EMA"),
            Param("pullback_long", int, 9, minimum=2, help="pullback cloud: longer EMA"),
            Param("macro_short", int, 34, minimum=1, help="macro cloud: shorter EMA"),
            Param("macro_long", int, 50, minimum=2, help="macro cloud: longer EMA"),
            Param("vol_lookback", int, 20, minimum=1, help="bars in the volume average"),
            Param("vol_mult", float, 1.5, minimum=0.0, help="volume confirmed above this x avg"),
            Param("high_conviction", float, 75, minimum=0, maximum=100, help="market entry at"),
            Param("medium_conviction", float, 50, minimum=0, maximum=100, help="limit entry at"),
            Param("scale_in", int, 0, minimum=0, maximum=1, help="1: half now, half on pullback"),
            Param("reward_risk", float, 2.0, minimum=0.1, help="target in R (2 = 2:1)"),
            Param("exhaustion_bars", int, 3, minimum=1, help="closes outside the fast cloud"),
            Param("time_stop_minutes", float, 120, minimum=1, help="day/scalp time stop"),
            Param("eod_minute", int, 955, minimum=0, maximum=1439, help="day trades: ET minute"),
            Param("trade_type", int, DAY, minimum=0, maximum=2, help="0 day, 1 swing, 2 scalp"),
            Param("exit_priority", int, 12356, minimum=0, help="close-judged exits, in order"),
            Param("shorts", int, 0, minimum=0, maximum=1, help="1: also short (mirror)"),
            Param("qty", float, 0, minimum=0, help="units per entry; 0: the profile sizes"),
        ),
        doc=__doc__ or "",
        validate=_check,
        bars_needed=_bars_needed,
    )
)
