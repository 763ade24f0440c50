"""HTTP routes of the fake: Alpaca's trading REST v2 and the stock bars of market data v2.

One ``ThreadingHTTPServer`` serves both (alpaca-py's ``TradingClient`` and
``StockHistoricalDataClient`` take the same ``url_override``). Every request is checked for
the ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY`` headers (401 when missing, 403 when they
differ from the keys the fake was given), then for a pending counted failure (429...), then
routed under the backend's lock. Responses are JSON; ``DELETE /v2/orders/{id}`` answers 204
with no body, ``DELETE /v2/orders`` 207 with one result per order, as Alpaca does.
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from backstop.testing.fake_alpaca import data, submit, wire
from backstop.testing.fake_alpaca.faults import Faults
from backstop.testing.fake_alpaca.market import Market
from backstop.testing.fake_alpaca.orders import CODE_INVALID, OPEN_STATUSES, Refused

CLOSED_STATUSES = ("filled", "canceled", "expired", "rejected", "replaced", "done_for_day")
ERROR_BODIES = {
    429: {"code": 42910000, "message": "rate limit exceeded"},
    500: {"code": 50010000, "message": "internal server error"},
    503: {"code": 50310000, "message": "service unavailable"},
    504: {"code": 50410000, "message": "gateway timeout"},
}


@dataclass
class Backend:
    """What the routes act on: the market, its lock, the faults, the keys and the stream."""

    market: Market
    faults: Faults
    keys: tuple[str, str] | None
    publish: Callable[[], None]
    lock: threading.RLock = field(default_factory=threading.RLock)
    log: list[tuple[str, str, int]] = field(default_factory=list)
    bugs: list[str] = field(default_factory=list)  # exceptions a route raised (HTTP 500)


Reply = tuple[int, Any]


def _flag(params: dict[str, str], key: str) -> bool:
    return params.get(key, "false").lower() == "true"


def _int(params: dict[str, str], key: str, default: int, top: int) -> int:
    raw = params.get(key)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        raise Refused(422, CODE_INVALID, f"invalid {key} {raw!r}") from None
    return max(1, min(value, top))


def _list_orders(market: Market, params: dict[str, str]) -> Reply:
    status = params.get("status", "open")
    wanted = {"open": OPEN_STATUSES, "closed": CLOSED_STATUSES}.get(status)
    if wanted is None and status != "all":
        raise Refused(422, CODE_INVALID, f"invalid status {status!r}")
    nested = _flag(params, "nested")
    symbols = {s for s in params.get("symbols", "").split(",") if s}
    after = data.time_param(params, "after")
    until = data.time_param(params, "until")
    rows = []
    for o in market.orders.values():
        if nested and o.parent_id is not None:
            continue
        family = [o, *(market.orders[k] for k in o.legs)] if nested else [o]
        if wanted is not None and all(x.status not in wanted for x in family):
            continue
        if symbols and o.symbol not in symbols:
            continue
        if params.get("side") and o.side != params["side"]:
            continue
        if (after is not None and o.created_at <= after) or (
            until is not None and o.created_at >= until
        ):
            continue
        rows.append(o)
    rows.sort(key=lambda o: (o.created_at, o.seq), reverse=params.get("direction") != "asc")
    rows = rows[: _int(params, "limit", 50, 500)]
    return 200, [wire.order_json(o, market, nested=nested) for o in rows]


def _activities(market: Market, params: dict[str, str]) -> Reply:
    types = params.get("activity_types", "FILL").split(",")
    if "FILL" not in types:
        return 200, []
    rows = [wire.activity_json(f) for f in market.fills]
    after = data.time_param(params, "after")
    until = data.time_param(params, "until")
    rows = [
        r
        for r, f in zip(rows, market.fills, strict=True)
        if (after is None or f.ts > after) and (until is None or f.ts < until)
    ]
    if params.get("direction", "desc") == "desc":
        rows.reverse()
    token = params.get("page_token")
    if token:
        ids = [r["id"] for r in rows]
        rows = rows[ids.index(token) + 1 :] if token in ids else []
    return 200, rows[: _int(params, "page_size", 100, 100)]


def _position(market: Market, symbol: str) -> Reply:
    if symbol not in market.positions:
        raise Refused(404, 40410000, "position does not exist")
    return 200, wire.position_json(market, symbol)


def _close_position(market: Market, symbol: str) -> Reply:
    pos = market.positions.get(symbol)
    if pos is None:
        raise Refused(404, 40410000, "position does not exist")
    side = "sell" if pos.qty > 0 else "buy"
    body = {"symbol": symbol, "qty": abs(pos.qty), "side": side, "type": "market"}
    order = submit.submit(market, {**body, "time_in_force": "day"})
    return 200, wire.order_json(order)


def _close_all(market: Market, cancel_orders: bool) -> Reply:
    """``DELETE /v2/positions``: one closing order per position (207, one result each)."""
    if cancel_orders:
        submit.cancel_all(market)
    out = []
    for symbol in sorted(market.positions):
        try:
            _, order = _close_position(market, symbol)
            out.append({"symbol": symbol, "status": 200, "body": order})
        except Refused as exc:
            out.append({"symbol": symbol, "status": exc.status, "body": exc.body})
    return 207, out


def route(b: Backend, method: str, path: str, params: dict[str, str], body: Any) -> Reply:
    """Answer one request (the lock is held by the caller)."""
    m = b.market
    parts = path.strip("/").split("/")
    if parts == ["_fake", "advance"] and method == "POST":
        # test and demo control (not Alpaca's): deliver the next bar time, as ``advance()``
        moved = m.advance()
        b.publish()
        return 200, {"moved": moved, "now": wire.rfc3339(m.now)}
    if parts[0] != "v2" or len(parts) < 2:
        raise Refused(404, 40410000, f"endpoint not found: {method} {path}")
    head, rest = parts[1], parts[2:]
    if method == "GET" and head == "account" and not rest:
        return 200, wire.account_json(m)
    if method == "GET" and head == "account" and rest[:1] == ["activities"]:
        if rest[1:]:
            params = {**params, "activity_types": rest[1]}
        return _activities(m, params)
    if method == "GET" and head == "clock":
        return 200, wire.clock_json(m)
    if method == "GET" and head == "assets":
        if not rest:
            return 200, [wire.asset_json(s) for s in m.tape.symbols]
        if rest[0] not in m.tape.symbols:
            raise Refused(404, 40410000, f"asset not found for {rest[0]}")
        return 200, wire.asset_json(rest[0])
    if head == "positions":
        if method == "GET":
            if rest:
                return _position(m, rest[0])
            return 200, [wire.position_json(m, s) for s in sorted(m.positions)]
        if method == "DELETE" and rest:
            return _close_position(m, rest[0])
        if method == "DELETE":
            return _close_all(m, _flag(params, "cancel_orders"))
    if head == "orders:by_client_order_id" and method == "GET":
        order = m.by_client.get(params.get("client_order_id", ""))
        if order is None:
            raise Refused(404, 40410000, "order not found")
        return 200, wire.order_json(order)
    if head == "orders":
        if method in ("POST", "PATCH") and not isinstance(body, dict):
            raise Refused(422, CODE_INVALID, "request body must be a JSON object")
        if method == "POST" and not rest:
            response = submit.submit(m, body)
            return 200, wire.order_json(response, m, nested=True)
        if method == "GET" and not rest:
            return _list_orders(m, params)
        if method == "DELETE" and not rest:
            return 207, submit.cancel_all(m)
        if method == "GET":
            order = submit.find(m, rest[0])
            return 200, wire.order_json(order, m, nested=_flag(params, "nested"))
        if method == "PATCH":
            return 200, wire.order_json(submit.replace(m, rest[0], body))
        if method == "DELETE":
            submit.cancel(m, rest[0])
            return 204, None
    if method == "GET" and head == "stocks" and rest == ["bars"]:
        return 200, data.bars_page(m, params)
    if method == "GET" and head == "stocks" and rest == ["bars", "latest"]:
        return 200, data.latest_bars(m, params)
    raise Refused(404, 40410000, f"endpoint not found: {method} {path}")


def make_handler(backend: Backend) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``backend``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "FakeAlpaca/1"
        timeout = 5  # seconds a connection may sit idle before the handler gives up

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: tests read ``FakeAlpaca.requests`` instead of stderr."""

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            status, payload = self._answer(method, url.path, url.query)
            with backend.lock:
                backend.log.append((method, url.path, status))
            raw = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _answer(self, method: str, path: str, query: str) -> Reply:
            key = self.headers.get("APCA-API-KEY-ID") or ""
            secret = self.headers.get("APCA-API-SECRET-KEY") or ""
            if not key or not secret:
                return 401, {"code": 40110000, "message": "request is not authorized"}
            if backend.keys is not None and (key, secret) != backend.keys:
                return 403, {"code": 40310000, "message": "forbidden."}
            params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = None
            if length:
                try:
                    body = json.loads(self.rfile.read(length))
                except ValueError:
                    return 422, {"code": CODE_INVALID, "message": "request body is not JSON"}
            with backend.lock:
                failure = backend.faults.take_failure()
                if failure is not None:
                    return failure, ERROR_BODIES.get(failure, {"code": failure * 100000})
                try:
                    reply = route(backend, method, path, params, body)
                except Refused as exc:
                    reply = exc.status, exc.body
                except Exception as exc:  # a bug in the fake: loud, with its traceback
                    traceback.print_exc()
                    backend.bugs.append(f"{method} {path}: {exc!r}")
                    reply = 500, {"code": 50010000, "message": f"fake alpaca bug: {exc!r}"}
                backend.publish()
                accepted = method == "POST" and path == "/v2/orders" and reply[0] == 200
                if accepted and backend.faults.take_timeout():
                    return 504, ERROR_BODIES[504]
            return reply

    return Handler
