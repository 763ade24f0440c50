"""The event driver's own records: its orders as ORDER_DTYPE rows, projected from the mirror,
and its durable state (state structs, mirror, bracket plans, booked fills) as checkpoint
parts.

A run through the driver is journaled from what the driver itself saw (the commands it sent
and the broker events it applied), never from a venue's order book: the same journal comes
out whether the venue was the simulator, a fake or a live broker.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from backstop.domain.enums import TERMINAL_STATUSES
from backstop.domain.orders import parse_client_order_id
from backstop.engine.checkpoint import rebuild, struct_arrays
from backstop.engine.core.guard import AF_N, AI_N, SF_N, SI_N, Guard, _make_guard
from backstop.engine.core.records import (
    FILL_DTYPE,
    ORDER_DTYPE,
    Decisions,
    Portfolio,
    _make_decisions,
    _make_portfolio,
)
from backstop.engine.mirror import BrokerMirror, order_dict
from backstop.errors import BackstopError

if TYPE_CHECKING:
    from backstop.engine.driver import PortDriver


def order_records(mirror: BrokerMirror, index: Mapping[str, int]) -> np.ndarray:
    """Every order the driver sent, in the order sent, as the backtest book records them:
    ``id`` is the driver's order number, ``parent`` and ``sibling`` are order numbers (-1:
    none), ``leg_no`` is read back from the client id."""
    orders = list(mirror.orders.values())
    out = np.zeros(len(orders), dtype=ORDER_DTYPE)
    number = {o.client_order_id: o.order_no for o in orders}
    groups: dict[str, list[int]] = {}
    for o in orders:
        if o.oco_group:
            groups.setdefault(o.oco_group, []).append(o.order_no)
    for r, o in zip(out, orders, strict=True):
        parts = parse_client_order_id(o.client_order_id)
        pair = groups.get(o.oco_group, []) if o.oco_group else []
        r["id"] = o.order_no
        r["cycle"] = o.trade_cycle_id
        r["strategy"] = o.strategy
        r["sym"] = index[o.symbol]
        r["side"] = o.side
        r["otype"] = o.order_type
        r["tif"] = o.tif
        r["role"] = o.role
        r["status"] = o.status
        r["reduce_only"] = o.reduce_only
        r["leg_no"] = parts.leg_no if parts is not None else -1
        r["qty"] = o.qty
        r["filled"] = o.filled
        r["avg_fill"] = o.avg_fill
        r["limit_px"] = o.limit_price
        r["stop_px"] = o.stop_price
        r["trail_pct"] = 0.0 if o.trail_percent != o.trail_percent else o.trail_percent
        r["parent"] = number.get(o.parent_id, -1)
        r["sibling"] = next((k for k in pair if k != o.order_no), -1) if len(pair) == 2 else -1
        r["created_ts"] = o.sent_ts
        r["created_bar"] = o.sent_bar
        r["done_ts"] = o.done_ts
        r["reasons"] = o.reasons
    return out


def text_array(data: Any) -> np.ndarray:
    """Plain data as a one-element text array (a checkpoint part holds arrays only)."""
    return np.array([json.dumps(data, sort_keys=True)], dtype=np.str_)


def from_text_array(array: np.ndarray) -> Any:
    return json.loads(str(array[0]))


def _orders_text(driver: PortDriver) -> np.ndarray:
    """The mirror's orders as ``text_array`` writes them, each finished order's text made
    once and kept (a finished order never changes): a save costs the orders still working,
    not every order of the session."""
    done = driver.done_orders
    parts = []
    for cid, o in driver.mirror.orders.items():
        text = done.get(cid)
        if text is None:
            text = json.dumps(order_dict(o), sort_keys=True)
            if o.status in TERMINAL_STATUSES:
                done[cid] = text
        parts.append(text)
    return np.array(["[" + ", ".join(parts) + "]"], dtype=np.str_)


def snapshot(driver: PortDriver) -> dict[str, dict[str, np.ndarray]]:
    """A driver's checkpoint parts: its state structs, and as ``port`` its mirror, bracket
    plans, booked fills and the bar it was booking."""
    return {
        "guard": struct_arrays(driver.g),
        "portfolio": struct_arrays(driver.pf),
        "decisions": struct_arrays(driver.dec),
        # the mirror's parts apart, its orders in the order sent: a save rewrites only the
        # part of each that changed (CheckpointStore), not all orders for one new exec id
        "port": {
            "mirror.orders": _orders_text(driver),
            "mirror.positions": text_array(dict(sorted(driver.mirror.positions.items()))),
            "mirror.exec_ids": text_array(sorted(driver.mirror.exec_ids)),
            "brackets": text_array(driver.brackets.to_dict()),
            "fills": driver.fill_records(),
            "bar": np.array([driver.bar, driver._t0], dtype=np.int64),
        },
    }


def restore(driver: PortDriver, parts: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    """Put ``snapshot``'s parts back into ``driver``; a missing part is refused by name."""
    for name in ("guard", "portfolio", "decisions", "port"):
        if name not in parts:
            raise BackstopError(f"checkpoint has no {name!r} state for the event driver")
    _check_guard_columns(parts["guard"])
    driver._hold(
        rebuild(Guard, _make_guard, parts["guard"]),
        rebuild(Portfolio, _make_portfolio, parts["portfolio"]),
        rebuild(Decisions, _make_decisions, parts["decisions"]),
    )
    port = parts["port"]
    if "mirror" in port:  # a checkpoint from before the mirror's parts were saved apart
        mirror = from_text_array(port["mirror"])
    else:
        mirror = {k[7:]: from_text_array(v) for k, v in port.items() if k.startswith("mirror.")}
    driver.mirror = BrokerMirror.from_dict(mirror)
    driver.done_orders.clear()
    driver.brackets.restore(from_text_array(port["brackets"]))
    driver.fills = list(np.array(port["fills"], dtype=FILL_DTYPE))
    driver.bar, driver._t0 = (int(x) for x in port["bar"])


def _check_guard_columns(guard: Mapping[str, np.ndarray]) -> None:
    """Refuse a checkpoint whose guard arrays have another column layout than this backstop's
    (an older build's state read with today's columns would be silently wrong)."""
    for field, width in (("ai", AI_N), ("af", AF_N), ("si", SI_N), ("sf", SF_N)):
        have = guard.get(field)
        got = None if have is None else have.shape[-1]
        if got != width:
            raise BackstopError(
                f"checkpoint guard state {field!r} has {got} columns, this backstop keeps "
                f"{width}: it was written by another version; start the run afresh"
            )
