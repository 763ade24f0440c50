"""Alpaca order exports: the JSON list that ``GET /v2/orders?status=all&nested=true`` returns.

Each order (and each bracket leg in its ``legs``) becomes a ``BrokerOrder`` stamped at its
``submitted_at`` (``created_at`` when absent), carrying the export's last ``status``; a leg's
``parent_id`` is its parent's ``id``. Every order with ``filled_qty`` > 0 also becomes one
``BrokerFill`` of ``filled_qty`` at ``filled_avg_price``, stamped at ``filled_at`` (for a
partial fill that never completed, ``updated_at``): an export holds the order's total, not its
executions, so ``exec_id`` stays ``None``. Alpaca writes numbers as strings and times as
RFC 3339 with up to nanoseconds; both are read exactly.

Errors name the file, the list index as the row and the JSON path as the column, e.g.
``alpaca_orders.json:3, column [3].legs[1].filled_avg_price: not a number``. In tolerant
mode a bad order (or leg) is skipped on its own; its legs are still read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from backstop.errors import DataError
from backstop.replay.events import BrokerFill, BrokerOrder, Event
from backstop.replay.issues import LineIssues, Mode, read_text
from backstop.replay.timeline import Incident, sort_events
from backstop.replay.times import parse_iso_ns
from backstop.replay.values import (
    Converter,
    is_none,
    to_float,
    to_lower,
    to_order_type,
    to_side,
    to_text,
)


class _Bad(ValueError):
    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(problem)


def read_alpaca_orders(path: str | os.PathLike[str], mode: Mode = "safe") -> Incident:
    """Read an Alpaca orders export (a JSON list, or ``{"orders": [...]}``) into a timeline."""
    source = os.fspath(path)
    issues = LineIssues(source, mode, truth=True)
    try:
        text = read_text(source)
    except ValueError as exc:
        raise DataError(str(exc), source=source) from None
    orders = _document(text, issues)
    events: list[Event] = []
    for i, order in enumerate(orders):
        _order(order, i, f"[{i}]", None, issues, events)
    return Incident(
        name=Path(source).stem,
        tz="UTC",
        events=sort_events(events),
        skipped=tuple(issues.skipped),
        warnings=tuple(issues.warnings),
        inputs=(source,),
    )


def _document(text: str, issues: LineIssues) -> list[Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        line = text.splitlines()[exc.lineno - 1] if text.strip() else ""
        issues.fail(f"not JSON: {exc.msg} (column {exc.colno})", row=exc.lineno, text=line)
        return []
    if isinstance(doc, dict) and isinstance(doc.get("orders"), list):
        doc = doc["orders"]
    if not isinstance(doc, list):
        issues.fail("expected a JSON list of orders", row=1, text=text[:200])
        return []
    return doc


def _order(
    obj: object,
    index: int,
    path: str,
    parent_id: str | None,
    issues: LineIssues,
    out: list[Event],
) -> None:
    where = f"{issues.path}:{path}"
    if not isinstance(obj, dict):
        issues.fail("expected an order object", row=index, text=repr(obj), where=where, column=path)
        return
    symbol = obj.get("symbol") if isinstance(obj.get("symbol"), str) else None
    order_id: str | None = None
    try:
        order_id = _get(obj, "id", to_text)
        made = _events(obj, order_id, parent_id, where)
    except _Bad as exc:
        issues.fail(
            str(exc),
            row=index,
            text=json.dumps({k: v for k, v in obj.items() if k != "legs"}),
            where=where,
            column=f"{path}.{exc.key}",
            symbol=symbol,
        )
    else:
        out.extend(made)
    legs = obj.get("legs")
    if is_none(legs):
        return
    if not isinstance(legs, list):
        issues.fail(
            "legs must be a list", row=index, text=repr(legs), where=where, column=f"{path}.legs"
        )
        return
    for j, leg in enumerate(legs):
        _order(leg, index, f"{path}.legs[{j}]", order_id, issues, out)


def _get(obj: dict[str, Any], key: str, convert: Converter, required: bool = True) -> Any:
    value = obj.get(key)
    if is_none(value):
        if required:
            raise _Bad(key, "missing")
        return None
    try:
        return convert(value)
    except ValueError as exc:
        raise _Bad(key, str(exc)) from None


def _time(obj: dict[str, Any], *keys: str) -> int:
    for key in keys:
        value = obj.get(key)
        if is_none(value):
            continue
        if not isinstance(value, str):
            raise _Bad(key, f"expected an RFC 3339 string, got {value!r}")
        try:
            return parse_iso_ns(value)
        except ValueError as exc:
            raise _Bad(key, str(exc)) from None
    raise _Bad(keys[0], "missing")


def _events(obj: dict[str, Any], order_id: str, parent_id: str | None, where: str) -> list[Event]:
    symbol = _get(obj, "symbol", to_text)
    side = _get(obj, "side", to_side)
    order_type = _get(obj, "type", to_order_type, required=False) or _get(
        obj, "order_type", to_order_type, required=False
    )
    status = _get(obj, "status", to_lower)
    qty = _get(obj, "qty", _positive, required=False)
    filled = _get(obj, "filled_qty", _non_negative, required=False) or 0.0
    order = BrokerOrder(
        ts=_time(obj, "submitted_at", "created_at"),
        source=where,
        order_id=order_id,
        symbol=symbol,
        side=side,
        qty=qty,
        order_type=order_type,
        status=status,
        parent_id=parent_id,
        limit_price=_get(obj, "limit_price", to_float, required=False),
        stop_price=_get(obj, "stop_price", to_float, required=False),
        client_order_id=_get(obj, "client_order_id", to_text, required=False),
    )
    if filled <= 0:
        if status == "filled":
            raise _Bad("filled_qty", "status is filled but filled_qty is 0")
        return [order]
    if qty is not None and filled > qty:
        raise _Bad("filled_qty", f"filled_qty {filled:g} exceeds qty {qty:g}")
    fill = BrokerFill(
        ts=_time(obj, "filled_at", "updated_at"),
        source=where,
        order_id=order_id,
        symbol=symbol,
        side=side,
        qty=filled,
        price=_get(obj, "filled_avg_price", _positive),
    )
    return [order, fill]


def _positive(value: object) -> float:
    number = to_float(value)
    if number <= 0:
        raise ValueError(f"must be > 0, got {value!r}")
    return number


def _non_negative(value: object) -> float:
    number = to_float(value)
    if number < 0:
        raise ValueError(f"must be >= 0, got {value!r}")
    return number
