"""I/O with Alpaca through alpaca-py: REST calls, the trade-updates stream, market data.

Every method returns records of ``parsing`` (never an alpaca-py type) and raises one of
backstop's errors:

- ``BrokerUnavailable``: the request never reached the broker (connection refused, DNS,
  connect timeout) or was turned away unread (429 after alpaca-py's retries). Nothing
  was placed.
- ``OutcomeUnknown``: the request may have reached the broker but no answer came (read
  timeout, connection dropped mid-request, a 5xx after alpaca-py's own retries). A submit
  answered so may have been placed.
- ``AlpacaRefused``: the broker answered with an error (status, Alpaca's code and message).

alpaca-py retries any request, order submits included, on 429 and 504 (``_retry_wait``
apart, set here from the config); a 504 on an order the broker accepted comes back from the
retry as 422 40010001 (duplicate client id), which the adapter resolves by looking it up.

The trade-updates stream is in ``stream``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import polars as pl
import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import (
    StockBarsRequest,
    StockLatestBarRequest,
    StockLatestTradeRequest,
)
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetOrderByIdRequest, GetOrdersRequest
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from backstop.brokers.alpaca import parsing
from backstop.brokers.alpaca.config import AlpacaConfig, AlpacaKeys
from backstop.brokers.alpaca.parsing import FillActivity, OrderSnapshot
from backstop.domain.commands import AmendOrder, SubmitOrder
from backstop.domain.events import Account, BrokerPosition
from backstop.engine.broker import BrokerUnavailable
from backstop.errors import BackstopError

DUPLICATE_CLIENT_ID = 40010001  # "client_order_id must be unique": maybe placed, look it up
MAX_PAGES = 50  # activity pages read per call (100 each): a bound, not a expected size


class AlpacaRefused(BackstopError):
    """Alpaca answered a request with an error: ``status`` (HTTP), ``code`` and ``message``
    as Alpaca gave them (code 0 when the body had none)."""

    def __init__(self, what: str, status: int, code: int, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{what}: Alpaca answered {status} (code {code}): {message}")


class OutcomeUnknown(BackstopError):
    """The request may have reached Alpaca, but no answer says what happened."""


class _TimeoutAdapter(HTTPAdapter):
    """requests' adapter with a default timeout: alpaca-py's calls set none."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        return super().send(request, **kwargs)


def _bounded(client: Any, config: AlpacaConfig) -> Any:
    adapter = _TimeoutAdapter(config.request_timeout_s)
    client._session.mount("http://", adapter)
    client._session.mount("https://", adapter)
    client._retry_wait = config.retry_wait_s
    return client


class AlpacaClient:
    """alpaca-py's REST clients (trading and market data) behind backstop's types."""

    def __init__(self, config: AlpacaConfig, keys: AlpacaKeys) -> None:
        self._keys = keys
        self._trading = _bounded(
            TradingClient(
                keys.key_id, keys.secret, paper=config.paper, url_override=config.rest_url
            ),
            config,
        )
        self._data = _bounded(
            StockHistoricalDataClient(
                keys.key_id, keys.secret, url_override=config.data_url or config.rest_url
            ),
            config,
        )

    def __repr__(self) -> str:
        return f"AlpacaClient({self._trading._base_url!s})"

    # ------------------------------------------------------------ orders

    def submit(self, cmd: SubmitOrder) -> OrderSnapshot:
        """Send ``cmd`` as one request; the order as Alpaca accepted it."""
        request = parsing.order_request(cmd)
        order = self._call(f"submit {cmd.client_order_id}", self._trading.submit_order, request)
        return parsing.order_snapshot(order)

    def replace(self, broker_order_id: str, cmd: AmendOrder, new_cid: str) -> OrderSnapshot:
        """Replace an order (PATCH): the new order Alpaca made for it."""
        request = parsing.replace_request(cmd, new_cid)
        what = f"replace {cmd.client_order_id}"
        order = self._call(what, self._trading.replace_order_by_id, broker_order_id, request)
        return parsing.order_snapshot(order)

    def cancel(self, broker_order_id: str, what: str) -> None:
        """Ask Alpaca to cancel an order (it answers at once; the cancel may be pending)."""
        self._call(f"cancel {what}", self._trading.cancel_order_by_id, broker_order_id)

    def by_client_id(self, client_order_id: str) -> OrderSnapshot | None:
        """The order with this client id as Alpaca holds it (None: Alpaca has none)."""
        try:
            order = self._call(
                f"look up {client_order_id}",
                self._trading.get_order_by_client_id,
                client_order_id,
            )
        except AlpacaRefused as err:
            if err.status == 404:
                return None
            raise
        return parsing.order_snapshot(order)

    def by_id(self, broker_order_id: str, *, nested: bool = True) -> OrderSnapshot:
        """An order by Alpaca's id (legs nested)."""
        order = self._call(
            f"read order {broker_order_id}",
            self._trading.get_order_by_id,
            broker_order_id,
            GetOrderByIdRequest(nested=nested),
        )
        return parsing.order_snapshot(order)

    def orders(self, status: str, *, after_ns: int | None = None) -> list[OrderSnapshot]:
        """Orders (legs nested) with status ``open``, ``closed`` or ``all``, oldest first;
        ``after_ns``: submitted after that time only. The newest 500 (Alpaca's page)."""
        request = GetOrdersRequest(
            status=QueryOrderStatus(status),
            nested=True,
            limit=500,
            direction=Sort.DESC,  # with a limit, the newest are the ones to keep
            after=None if after_ns is None else parsing.ns_datetime(after_ns),
        )
        rows = self._call(f"list {status} orders", self._trading.get_orders, request)
        return [parsing.order_snapshot(o) for o in reversed(rows)]

    def fills(self, after_ns: int) -> list[FillActivity]:
        """Fill activities strictly after ``after_ns``, oldest first, every page."""
        out: list[FillActivity] = []
        params: dict[str, Any] = {
            "after": parsing.ns_datetime(after_ns).isoformat(),
            "direction": "asc",
            "page_size": 100,
        }
        for _ in range(MAX_PAGES):
            rows = self._call("read fills", self._trading.get, "/account/activities/FILL", params)
            out.extend(parsing.fill_activity(r) for r in rows or ())
            if len(rows or ()) < params["page_size"]:
                return out
            params["page_token"] = rows[-1]["id"]
        raise OutcomeUnknown(f"read fills: more than {MAX_PAGES} pages of fills after {after_ns}")

    # ------------------------------------------------------------ account

    def positions(self) -> list[BrokerPosition]:
        rows = self._call("read positions", self._trading.get_all_positions)
        return sorted((parsing.broker_position(p) for p in rows), key=lambda p: p.symbol)

    def account(self) -> Account:
        return parsing.account_snapshot(self._call("read account", self._trading.get_account))

    def broker_now_ns(self) -> int:
        """Alpaca's own clock (the market clock's timestamp): re-syncs look back from it."""
        clock = self._call("read clock", self._trading.get_clock)
        return parsing.ts_ns(clock.timestamp)

    # ------------------------------------------------------------ market data

    def bars(
        self,
        symbols: list[str],
        timeframe: str,
        start_ns: int,
        end_ns: int | None = None,
        *,
        limit: int | None = None,
    ) -> pl.DataFrame:
        """Bars of ``symbols`` from ``start_ns`` (to ``end_ns``, inclusive) as a polars frame
        in ``BAR_SCHEMA``. alpaca-py follows Alpaca's pages itself; ``limit`` stops it after
        that many bars in all (None: every page)."""
        request = StockBarsRequest(
            symbol_or_symbols=list(symbols),
            timeframe=parsing.timeframe(timeframe),
            start=parsing.ns_datetime(start_ns),
            end=None if end_ns is None else parsing.ns_datetime(end_ns),
            limit=limit,
        )
        return parsing.bars_frame(self._call("read bars", self._data.get_stock_bars, request))

    def latest_price(self, symbol: str) -> float | None:
        """The latest trade's price, else the latest bar's close (None: Alpaca has neither
        for the symbol)."""
        trades = self._optional(
            "latest trade",
            self._data.get_stock_latest_trade,
            StockLatestTradeRequest(symbol_or_symbols=symbol),
        )
        if trades and symbol in trades:
            return float(trades[symbol].price)
        bars = self._optional(
            "latest bar",
            self._data.get_stock_latest_bar,
            StockLatestBarRequest(symbol_or_symbols=symbol),
        )
        if bars and symbol in bars:
            return float(bars[symbol].close)
        return None

    def _optional(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """A market-data call whose 404 / 422 means "none" (an endpoint or symbol without
        data) rather than an error."""
        try:
            return self._call(what, fn, *args)
        except AlpacaRefused as err:
            if err.status in (404, 422):
                return None
            raise

    # ------------------------------------------------------------ errors

    def _call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one alpaca-py call, turning its failures into backstop's three errors."""
        try:
            return fn(*args)
        except APIError as err:
            status = err.status_code or 0
            code, message = _error_body(str(err))
            message = self._keys.redact(message)
            if status >= 500:
                raise OutcomeUnknown(f"{what}: Alpaca answered {status}: {message}") from None
            if status == 429:  # still rate limited after alpaca-py's own retries: not taken
                raise BrokerUnavailable(f"{what}: Alpaca answered 429: {message}") from None
            raise AlpacaRefused(what, status, code, message) from None
        except requests.exceptions.ConnectionError as err:
            if _never_sent(err):
                raise BrokerUnavailable(f"{what}: Alpaca cannot be reached: {_why(err)}") from None
            raise OutcomeUnknown(f"{what}: the connection dropped: {_why(err)}") from None
        except requests.exceptions.Timeout as err:
            raise OutcomeUnknown(f"{what}: no answer in time: {_why(err)}") from None


def _error_body(text: str) -> tuple[int, str]:
    try:
        body = json.loads(text)
    except ValueError:
        return 0, text.strip()[:300]
    if not isinstance(body, dict):
        return 0, text.strip()[:300]
    code = body.get("code", 0)
    return (code if isinstance(code, int) else 0), str(body.get("message", text))[:300]


def _never_sent(err: requests.exceptions.ConnectionError) -> bool:
    """True when the connection was never made (refused, no route, connect timeout)."""
    if isinstance(err, requests.exceptions.ConnectTimeout):
        return True
    reason = err.args[0] if err.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | ConnectTimeoutError | ConnectionRefusedError)


def _why(err: Exception) -> str:
    reason = err.args[0] if err.args else err
    if isinstance(reason, MaxRetryError) and reason.reason is not None:
        reason = reason.reason
    return type(reason).__name__
