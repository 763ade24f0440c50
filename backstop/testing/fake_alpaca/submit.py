"""Order commands against the market: submit, replace, cancel, with Alpaca's refusals.

Refusals, each a ``Refused`` with Alpaca's HTTP status and error JSON:

- 422 40010001: malformed body (missing or bad field, unknown symbol, a type, time in force or
  class the fake does not serve) and ``client_order_id must be unique`` (an id stays taken
  after its order is cancelled);
- 422 42210000: exit legs on the wrong side of the base price; cancelling or replacing an
  order that is no longer open;
- 403 40310000: ``insufficient qty available for order`` (a closing order larger than the
  position less what working orders hold: Alpaca never lets one order cross zero, though a
  sell while flat opens a short), ``insufficient buying power``, and the refuse fault;
- 404 40410000: no such order.
"""

from __future__ import annotations

from typing import Any

from backstop.testing.fake_alpaca.market import Market, snapshot
from backstop.testing.fake_alpaca.matching import trailing_level
from backstop.testing.fake_alpaca.orders import (
    CODE_FORBIDDEN,
    CODE_INVALID,
    CODE_PRICE,
    ORDER_CLASSES,
    ORDER_TYPES,
    TIME_IN_FORCE,
    FakeOrder,
    Refused,
    check_bracket_levels,
    check_increment,
    check_prices,
    choice,
    fake_uuid,
    number,
)

CODE_NOT_FOUND = 40410000


def find(market: Market, order_id: str) -> FakeOrder:
    """The order with this id, or a 404 refusal."""
    order = market.orders.get(order_id)
    if order is None:
        raise Refused(404, CODE_NOT_FOUND, "order not found")
    return order


def _client_id(market: Market, body: dict[str, Any], n: int) -> str:
    cid = body.get("client_order_id")
    if cid is None:
        return fake_uuid("client", n)
    cid = str(cid)
    if not cid or len(cid) > 128:
        raise Refused(422, CODE_INVALID, "client_order_id must be 1 to 128 characters")
    if cid in market.by_client:
        raise Refused(422, CODE_INVALID, "client_order_id must be unique")
    return cid


def _check_qty_available(market: Market, symbol: str, side: str, qty: float) -> None:
    """Alpaca refuses one order that would take a position through zero."""
    pos = market.positions.get(symbol)
    if pos is None or pos.qty == 0 or (pos.qty > 0) == (side == "buy"):
        return
    held, related = market.held_for_orders(symbol, side)
    available = abs(pos.qty) - held
    if qty > available + 1e-9:
        raise Refused(
            403,
            CODE_FORBIDDEN,
            f"insufficient qty available for order (requested: {qty:g}, available: {available:g})",
            available=f"{available:g}",
            existing_qty=f"{abs(pos.qty):g}",
            held_for_orders=f"{held:g}",
            related_orders=related,
            symbol=symbol,
        )


def _check_buying_power(market: Market, order: FakeOrder) -> None:
    pos = market.positions.get(order.symbol)
    closing = pos is not None and pos.qty != 0 and (pos.qty > 0) != (order.side == "buy")
    if closing:
        return
    px = order.limit_price or order.stop_price or market.price(order.symbol)
    if order.qty * px > market.buying_power() + 1e-9:
        raise Refused(403, CODE_FORBIDDEN, "insufficient buying power")


def _leg(market: Market, parent: FakeOrder, kind: str, side: str, cid: str) -> FakeOrder:
    oid, seq = market.next_order_id()
    return FakeOrder(
        oid, cid, parent.symbol, side, parent.qty, kind, parent.time_in_force,
        parent.order_class, market.now, "held", seq, updated_at=market.now,
        parent_id=parent.id, live_from=parent.live_from,
    )  # fmt: skip


def _legs(market: Market, parent: FakeOrder, body: dict[str, Any]) -> list[FakeOrder]:
    """Build the exit legs a bracket, OTO or OCO body asks for (checked against the base)."""
    tp = body.get("take_profit") or {}
    sl = body.get("stop_loss") or {}
    tp_px = number(tp, "limit_price", required=parent.order_class in ("bracket", "oco"))
    sl_px = number(sl, "stop_price", required=parent.order_class in ("bracket", "oco"))
    if parent.order_class == "oto" and (tp_px is None) == (sl_px is None):
        raise Refused(422, CODE_INVALID, "oto orders need exactly one of take_profit, stop_loss")
    entry_side = parent.side if parent.order_class != "oco" else ("buy", "sell")[parent.sign > 0]
    base = parent.limit_price if parent.type == "limit" else market.price(parent.symbol)
    if parent.order_class == "oco":
        base = market.price(parent.symbol)
    check_bracket_levels(entry_side, float(base), tp_px, sl_px)
    exit_side = "sell" if entry_side == "buy" else "buy"
    legs = []
    n = market._n_orders
    if tp_px is not None and parent.order_class != "oco":
        leg = _leg(market, parent, "limit", exit_side, fake_uuid("client-leg", n + 1))
        leg.limit_price = tp_px
        legs.append(leg)
    if sl_px is not None:
        sl_limit = number(sl, "limit_price")
        leg = _leg(market, parent, "stop_limit" if sl_limit else "stop", exit_side,
                   fake_uuid("client-leg", n + 1 + len(legs)))  # fmt: skip
        leg.stop_price, leg.limit_price = sl_px, sl_limit
        legs.append(leg)
    if parent.order_class == "oco":
        parent.limit_price = tp_px
    if len(legs) == 2:
        legs[0].sibling_id, legs[1].sibling_id = legs[1].id, legs[0].id
    elif parent.order_class == "oco":
        parent.sibling_id, legs[0].sibling_id = legs[0].id, parent.id
        legs[0].status = "new"
    return legs


def submit(market: Market, body: dict[str, Any]) -> FakeOrder:
    """Accept an order body (or raise ``Refused``); returns the response snapshot."""
    symbol = str(body.get("symbol") or "")
    if symbol not in market.tape.symbols:
        raise Refused(422, CODE_INVALID, f'asset "{symbol}" not found')
    if body.get("notional") is not None:
        raise Refused(422, CODE_INVALID, "notional orders are not served by the fake")
    qty = number(body, "qty", required=True)
    side = choice(body, "side", ("buy", "sell"), None)
    kind = choice(body, "type", ORDER_TYPES, None)
    tif = choice(body, "time_in_force", TIME_IN_FORCE, None)
    klass = choice(body, "order_class", ORDER_CLASSES, "simple")
    if klass == "simple" and (body.get("take_profit") or body.get("stop_loss")):
        raise Refused(422, CODE_INVALID, "take_profit/stop_loss need order_class bracket/oto/oco")
    if klass in ("bracket", "oto") and kind not in ("market", "limit"):
        raise Refused(422, CODE_INVALID, f"{klass} orders take a market or limit entry")
    if klass == "oco" and kind != "limit":
        raise Refused(422, CODE_INVALID, "oco orders must be limit orders")
    if klass != "simple" and tif not in ("day", "gtc"):
        raise Refused(422, CODE_INVALID, f"{klass} orders must be day or gtc")
    oid, seq = market.next_order_id()
    cid = _client_id(market, body, seq)
    order = FakeOrder(
        oid, cid, symbol, side, float(qty), kind, tif, klass, market.now, "new", seq,
        extended_hours=bool(body.get("extended_hours", False)), updated_at=market.now,
        live_from=market.index + 1 + market.faults.delay_for(symbol),
    )  # fmt: skip
    if klass != "oco":
        check_prices(order, body)
    legs = _legs(market, order, body) if klass != "simple" else []
    order.legs = [leg.id for leg in legs]
    if market.tick_check:
        for o in [order, *legs]:
            check_increment("limit_price", o.limit_price)
            check_increment("stop_price", o.stop_price)
            check_increment("trail_price", o.trail_price)
    _check_qty_available(market, symbol, side, order.qty)
    _check_buying_power(market, order)
    how = market.faults.take_refusal(symbol)
    if how == "403":
        raise Refused(403, CODE_FORBIDDEN, f"order for {symbol} refused (fake refuse rule)")
    if kind == "trailing_stop":
        order.hwm = market.price(symbol)
        order.stop_price = trailing_level(order)
    cap = market.faults.max_fill(order.qty)
    for o in [order, *legs]:
        o.max_fill = cap
        market.add(o)
    response = snapshot(order, status="accepted")
    if how == "rejected":
        market.terminate(order, "rejected")
        return response
    market.emit("new", order)
    for leg in legs:
        if leg.status == "new":
            market.emit("new", leg)
    return response


def replace(market: Market, order_id: str, body: dict[str, Any]) -> FakeOrder:
    """Replace an open order by a new one (new id); the old one becomes ``replaced``."""
    old = find(market, order_id)
    if old.status not in ("new", "held", "partially_filled"):
        raise Refused(422, CODE_PRICE, f'order is already in "{old.status}" state')
    new_id, seq = market.next_order_id()
    cid = _client_id(market, body, seq)
    qty = number(body, "qty")
    new = snapshot(old, id=new_id, client_order_id=cid, seq=seq, created_at=market.now,
                   updated_at=market.now, replaces=old.id, filled_qty=0.0,
                   filled_avg_price=None, qty=qty if qty is not None else old.leaves_qty,
                   live_from=max(old.live_from, market.index + 1),
                   status="held" if old.status == "held" else "new")  # fmt: skip
    if body.get("time_in_force") is not None:
        new.time_in_force = choice(body, "time_in_force", TIME_IN_FORCE, None)
    for key in ("limit_price", "stop_price"):
        value = number(body, key)
        if value is not None:
            if getattr(old, key) is None:
                raise Refused(422, CODE_INVALID, f"{key} does not apply to a {old.type} order")
            setattr(new, key, value)
    trail = number(body, "trail")
    if trail is not None:
        if old.type != "trailing_stop":
            raise Refused(422, CODE_INVALID, f"trail does not apply to a {old.type} order")
        if old.trail_price is not None:
            new.trail_price = trail
        else:
            new.trail_percent = trail
        new.stop_price = trailing_level(new)
    if market.tick_check:
        for key in ("limit_price", "stop_price", "trail_price"):
            if not (key == "stop_price" and new.type == "trailing_stop"):  # derived, not sent
                check_increment(key, getattr(new, key))
    if new.qty > old.leaves_qty:
        _check_qty_available(market, old.symbol, old.side, new.qty - old.leaves_qty)
    now = market.now
    old.status, old.replaced_at, old.replaced_by, old.updated_at = "replaced", now, new.id, now
    market.add(new)
    for other in market.orders.values():
        if other.sibling_id == old.id:
            other.sibling_id = new.id
        if other.parent_id == old.id:
            other.parent_id = new.id
        if old.id in other.legs:
            other.legs = [new.id if x == old.id else x for x in other.legs]
    market.emit("replaced", old)
    if new.status != "held":
        market.emit("new", new)
    return snapshot(new)


def cancel(market: Market, order_id: str) -> None:
    """Cancel an open order (an entry's held legs go with it)."""
    order = find(market, order_id)
    if not order.is_open:
        raise Refused(422, CODE_PRICE, f'order is already in "{order.status}" state')
    market.terminate(order, "canceled")


def cancel_all(market: Market) -> list[dict[str, Any]]:
    """Cancel every open order; the per-order results ``DELETE /v2/orders`` answers."""
    out = []
    for order in list(market.orders.values()):
        if order.is_open:
            market.terminate(order, "canceled")
            out.append({"id": order.id, "status": 200})
    return out
