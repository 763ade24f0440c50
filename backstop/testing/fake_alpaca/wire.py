"""Market objects as Alpaca's JSON: the shapes alpaca-py 0.44's pydantic models parse.

Quantities and prices go out as strings (Alpaca's REST convention), written so that
``float(text)`` gives back the exact number (shortest round-trip repr; whole numbers without
``.0``). Timestamps are RFC 3339 in UTC with nanoseconds cut to microseconds.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from backstop.testing.fake_alpaca.market import Event, Fill, Market
from backstop.testing.fake_alpaca.orders import FakeOrder, fake_uuid
from backstop.testing.fake_alpaca.tape import Bar

ACCOUNT_ID = fake_uuid("account", 1)
EXCHANGE = "NASDAQ"  # a real AssetExchange value (alpaca-py refuses XNAS and the like)


def num(x: float | None) -> str | None:
    """A number as Alpaca's string: exact round trip, whole numbers without a fraction."""
    if x is None:
        return None
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def rfc3339(ts_ns: int | None) -> str | None:
    """An ns UTC timestamp as RFC 3339 (``2024-01-02T14:30:00Z``, microseconds when set)."""
    if ts_ns is None:
        return None
    t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ts_ns // 1000)
    return t.isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> int:
    """An RFC 3339 time (as alpaca-py sends ``after``/``until``/``start``) to ns UTC."""
    value = text.strip().replace("Z", "+00:00").replace(" ", "+")
    t = dt.datetime.fromisoformat(value)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def order_json(o: FakeOrder, market: Market | None = None, *, nested: bool = False) -> dict:
    """An order; its legs nested (as full orders) only when ``nested`` and a market is given."""
    legs = None
    if nested and market is not None and o.legs:
        legs = [order_json(market.orders[k], market) for k in o.legs]
    return {
        "id": o.id,
        "client_order_id": o.client_order_id,
        "created_at": rfc3339(o.created_at),
        "updated_at": rfc3339(o.updated_at or o.created_at),
        "submitted_at": rfc3339(o.created_at),
        "filled_at": rfc3339(o.filled_at),
        "expired_at": rfc3339(o.expired_at),
        "expires_at": None,
        "canceled_at": rfc3339(o.canceled_at),
        "failed_at": rfc3339(o.failed_at),
        "replaced_at": rfc3339(o.replaced_at),
        "replaced_by": o.replaced_by,
        "replaces": o.replaces,
        "asset_id": fake_uuid("asset", o.symbol),
        "symbol": o.symbol,
        "asset_class": "us_equity",
        "notional": None,
        "qty": num(o.qty),
        "filled_qty": num(o.filled_qty),
        "filled_avg_price": num(o.filled_avg_price),
        "order_class": o.order_class,
        "order_type": o.type,
        "type": o.type,
        "side": o.side,
        "position_intent": None,
        "time_in_force": o.time_in_force,
        "limit_price": num(o.limit_price),
        "stop_price": num(o.stop_price),
        "status": o.status,
        "extended_hours": o.extended_hours,
        "legs": legs,
        "trail_percent": num(o.trail_percent),
        "trail_price": num(o.trail_price),
        "hwm": num(o.hwm),
    }


def event_json(e: Event) -> dict:
    """A trade_updates message (the ``data`` fields alpaca-py's ``TradeUpdate`` parses)."""
    data: dict[str, Any] = {
        "event": e.event,
        "timestamp": rfc3339(e.ts),
        "order": order_json(e.order),
    }
    if e.price is not None:
        data.update(
            price=num(e.price),
            qty=num(e.qty),
            position_qty=num(e.position_qty),
            execution_id=e.execution_id,
        )
    return {"stream": "trade_updates", "data": data}


def position_json(market: Market, symbol: str) -> dict:
    """One open position, marked at the last close."""
    pos = market.positions[symbol]
    px = market.price(symbol)
    last = market.tape.prev_day_close(symbol, market.index)
    lastday = last if last is not None else pos.avg
    cost = pos.qty * pos.avg
    value = pos.qty * px
    upl = value - cost
    intraday = pos.qty * (px - lastday)
    return {
        "asset_id": fake_uuid("asset", symbol),
        "symbol": symbol,
        "exchange": EXCHANGE,
        "asset_class": "us_equity",
        "asset_marginable": True,
        "qty": num(pos.qty),
        "qty_available": num(market.qty_available(symbol)),
        "avg_entry_price": num(pos.avg),
        "side": "long" if pos.qty > 0 else "short",
        "market_value": num(value),
        "cost_basis": num(cost),
        "unrealized_pl": num(upl),
        "unrealized_plpc": num(upl / abs(cost) if cost else 0.0),
        "unrealized_intraday_pl": num(intraday),
        "unrealized_intraday_plpc": num(intraday / abs(pos.qty * lastday) if lastday else 0.0),
        "current_price": num(px),
        "lastday_price": num(lastday),
        "change_today": num((px - lastday) / lastday if lastday else 0.0),
    }


def account_json(market: Market) -> dict:
    """The trading account: cash, equity and market values at the last closes."""
    long_mv = sum(p.qty * market.price(s) for s, p in market.positions.items() if p.qty > 0)
    short_mv = sum(p.qty * market.price(s) for s, p in market.positions.items() if p.qty < 0)
    equity = market.equity()
    bp = market.buying_power()
    return {
        "id": ACCOUNT_ID,
        "account_number": "PA0FAKE00001",
        "status": "ACTIVE",
        "crypto_status": "INACTIVE",
        "currency": "USD",
        "buying_power": num(bp),
        "regt_buying_power": num(bp),
        "non_marginable_buying_power": num(max(0.0, market.cash)),
        "cash": num(market.cash),
        "accrued_fees": "0",
        "pending_transfer_in": "0",
        "pending_transfer_out": "0",
        "portfolio_value": num(equity),
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "created_at": rfc3339(int(market.tape.times[0])),
        "trade_suspended_by_user": False,
        "multiplier": num(market.multiplier),
        "shorting_enabled": True,
        "equity": num(equity),
        "last_equity": num(market.last_equity),
        "long_market_value": num(long_mv),
        "short_market_value": num(short_mv),
        "initial_margin": num((long_mv - short_mv) / 2),
        "maintenance_margin": num((long_mv - short_mv) * 0.3),
        "last_maintenance_margin": "0",
        "sma": "0",
        "options_buying_power": "0",
        "options_approved_level": 0,
        "options_trading_level": 0,
    }


def asset_json(symbol: str) -> dict:
    """A tradable, shortable US equity on NASDAQ."""
    return {
        "id": fake_uuid("asset", symbol),
        "class": "us_equity",
        "exchange": EXCHANGE,
        "symbol": symbol,
        "name": f"{symbol} (fake)",
        "status": "active",
        "tradable": True,
        "marginable": True,
        "shortable": True,
        "easy_to_borrow": True,
        "fractionable": True,
        "attributes": [],
    }


def clock_json(market: Market) -> dict:
    """The clock from the tape: open while the current New York day has bars still to come."""
    _, close, next_day = market.tape.session_bounds(market.index)
    is_open = (
        market.index + 1 < len(market.tape)
        and market.tape.days[market.index + 1] == (market.tape.days[market.index])
    )
    if is_open:
        next_open = next_day if next_day is not None else close
        next_close = close
    else:
        end = next_day if next_day is not None else close
        next_open = end
        next_close = market.tape.session_bounds(market.index + 1)[1] if next_day else close
    return {
        "timestamp": rfc3339(market.now),
        "is_open": is_open,
        "next_open": rfc3339(next_open),
        "next_close": rfc3339(next_close),
    }


def activity_json(f: Fill) -> dict:
    """A FILL account activity (``TradeActivity`` in alpaca-py)."""
    stamp = rfc3339(f.ts).replace("-", "").replace(":", "").replace("T", "").replace("Z", "")
    return {
        "id": f"{stamp.replace('.', '')[:17].ljust(17, '0')}::{f.id}",
        "account_id": ACCOUNT_ID,
        "activity_type": "FILL",
        "transaction_time": rfc3339(f.ts),
        "type": "fill" if f.order_status == "filled" else "partial_fill",
        "price": num(f.price),
        "qty": num(f.qty),
        "side": f.side,
        "symbol": f.symbol,
        "leaves_qty": num(f.leaves_qty),
        "order_id": f.order_id,
        "cum_qty": num(f.cum_qty),
        "order_status": f.order_status,
    }


def bar_json(b: Bar) -> dict:
    """A market-data bar (``t o h l c v n vw``); the tape has no trade count or VWAP: null."""
    return {
        "t": rfc3339(b.ts),
        "o": b.open,
        "h": b.high,
        "l": b.low,
        "c": b.close,
        "v": b.volume,
        "n": None,
        "vw": None,
    }


def page_token(symbol: str, ts: int) -> str:
    """An opaque pagination token naming where the next page starts."""
    return base64.urlsafe_b64encode(f"{symbol}|{ts}".encode()).decode()


def read_page_token(token: str) -> tuple[str, int]:
    """Decode ``page_token``; a bad token raises ``ValueError``."""
    symbol, _, ts = base64.urlsafe_b64decode(token.encode()).decode().partition("|")
    return symbol, int(ts)
