"""Fill prices of one order on one bar: DESIGN.md's fill rules as plain functions.

- market      -> the open of the first bar it is live on;
- limit       -> min(open, L) for buys / max(open, L) for sells, once touched;
- stop        -> max(open, S) for buys / min(open, S) for sells, once touched (a gap through
                 the level fills at the open, the worse price);
- stop_limit  -> triggers like a stop; fills at the trigger price when that is within the
                 limit, otherwise rests as a plain limit from the next bar;
- trailing    -> a stop whose level trails the best price seen through the previous bar
                 (``hwm``: the highest high for a sell, the lowest low for a buy).

These mirror the backtest's exchange kernels (``brokers/sim/fill_rules.py``) so a run against
the fake and a backtest on the same bars price fills alike. Two phases per bar, as there:
``at_open`` (does it fill at the open print?) and ``intrabar`` (is its level touched later?).
Each returns ``(price or None, rest_as_limit)``.
"""

from __future__ import annotations

from backstop.testing.fake_alpaca.orders import FakeOrder

Quote = tuple[float | None, bool]


def effective_type(order: FakeOrder) -> str:
    """The order's type for matching: a stop-limit triggered beyond its limit acts as a limit."""
    return "limit" if order.type == "stop_limit" and order.triggered else order.type


def stop_level(order: FakeOrder) -> float:
    """The trigger level of a stop, stop-limit or trailing stop (trailing: kept in stop_price)."""
    if order.stop_price is None:
        raise ValueError(f"order {order.id} ({order.type}) has no stop level")
    return order.stop_price


def trailing_level(order: FakeOrder) -> float:
    """The stop level a trailing stop's water mark implies (trail_percent is in percent)."""
    water = float(order.hwm if order.hwm is not None else 0.0)
    trail = (
        order.trail_price if order.trail_price is not None else water * order.trail_percent / 100
    )
    return water - trail if order.side == "sell" else water + trail


def at_open(order: FakeOrder, open_: float) -> Quote:
    """Price at the open print, and whether a stop-limit triggered beyond its limit."""
    buy = order.side == "buy"
    kind = effective_type(order)
    if kind == "market":
        return open_, False
    if kind == "limit":
        lim = order.limit_price
        return (open_ if (open_ <= lim if buy else open_ >= lim) else None), False
    if kind in ("stop", "trailing_stop"):
        s = stop_level(order)
        return (open_ if (open_ >= s if buy else open_ <= s) else None), False
    if kind == "stop_limit":
        s = stop_level(order)
        if not (open_ >= s if buy else open_ <= s):
            return None, False
        lim = order.limit_price
        within = open_ <= lim if buy else open_ >= lim
        return (open_, False) if within else (None, True)
    return None, False


def stop_touched(order: FakeOrder, high: float, low: float) -> bool:
    """Whether a stop-type order's level lies inside the bar on its trigger side."""
    s = stop_level(order)
    return high >= s if order.side == "buy" else low <= s


def limit_touched(order: FakeOrder, high: float, low: float) -> bool:
    """Whether a limit order's level lies inside the bar on its fill side."""
    lim = order.limit_price
    return low <= lim if order.side == "buy" else high >= lim


def intrabar(order: FakeOrder, high: float, low: float) -> Quote:
    """Price when the order's level is touched after the open (the level itself)."""
    kind = effective_type(order)
    if kind == "limit":
        return (order.limit_price if limit_touched(order, high, low) else None), False
    if kind in ("stop", "trailing_stop"):
        return (stop_level(order) if stop_touched(order, high, low) else None), False
    if kind == "stop_limit":
        if not stop_touched(order, high, low):
            return None, False
        s = stop_level(order)
        lim = order.limit_price
        within = s <= lim if order.side == "buy" else s >= lim
        return (s, False) if within else (None, True)
    return None, False


def is_stop_type(order: FakeOrder) -> bool:
    """Stops, stop-limits and trailing stops: the ones that fill first in an ambiguous bar."""
    return order.type in ("stop", "stop_limit", "trailing_stop")


def ratchet(order: FakeOrder, high: float, low: float) -> None:
    """Move a trailing stop's water mark with a finished bar; its level only ever tightens."""
    if order.type != "trailing_stop":
        return
    water = float(order.hwm) if order.hwm is not None else (high if order.side == "sell" else low)
    water = max(water, high) if order.side == "sell" else min(water, low)
    order.hwm = water
    level = trailing_level(order)
    cur = order.stop_price
    if cur is None or (level > cur if order.side == "sell" else level < cur):
        order.stop_price = level
