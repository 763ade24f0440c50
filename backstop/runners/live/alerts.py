"""Alerts for a person watching the live runner: what happened, delivered where they look.

The runner builds an ``Alert`` (its time comes from the runner's clock, never read here) and
hands it to a ``Notifier``. Sinks: ``LogSink`` (one line per alert through ``logging``),
``WebhookSink`` (one JSON POST per alert, bounded timeout) and ``FanOut`` (several sinks).
Delivering an alert never raises into the runner: a trading loop must not stop because a
chat service is down. A failed delivery is logged (with the HTTP status or the connection
error) and counted on the sink, so it is never silent either.

``SignalsWithoutOrders`` is the alarm for seed 000's silent no-op (89 signals reached the
executor, zero orders went out, nothing said so): fed the runner's counts per window, it
raises ``NO_ORDERS_FROM_SIGNALS`` once when a strategy's approved signals pile up with no
order sent, and re-arms when an order goes out.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import numbers
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from backstop.errors import ConfigError, check

LOGGER_NAME = "backstop.alerts"
DEFAULT_TIMEOUT_S = 2.0
MAX_TIMEOUT_S = 30.0
DEFAULT_SILENT_SIGNALS = 3  # the replay's NO_ORDERS_FROM_SIGNALS streak (replay/outcome.py)


class AlertKind(StrEnum):
    """What an alert is about."""

    ENTRY = "ENTRY"
    FILL = "FILL"
    STOP_HIT = "STOP_HIT"
    KILL_SWITCH = "KILL_SWITCH"
    DESYNC = "DESYNC"
    UNPROTECTED_POSITION = "UNPROTECTED_POSITION"
    NO_ORDERS_FROM_SIGNALS = "NO_ORDERS_FROM_SIGNALS"
    ERROR = "ERROR"
    CONNECTION = "CONNECTION"  # the broker's connection lost or restored


_LEVEL = {
    AlertKind.ENTRY: logging.INFO,
    AlertKind.FILL: logging.INFO,
    AlertKind.STOP_HIT: logging.WARNING,
    AlertKind.KILL_SWITCH: logging.ERROR,
    AlertKind.DESYNC: logging.ERROR,
    AlertKind.UNPROTECTED_POSITION: logging.ERROR,
    AlertKind.NO_ORDERS_FROM_SIGNALS: logging.ERROR,
    AlertKind.ERROR: logging.ERROR,
    AlertKind.CONNECTION: logging.WARNING,
}


def _is_count(value: Any) -> bool:
    """An integer >= 0 (Python or numpy; never a bool or a float)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 0


def iso_ns(ts: int) -> str:
    """``ts`` (ns UTC) as ISO-8601 text to the millisecond, e.g. ``2026-06-05T14:31:05.120Z``."""
    seconds, ns = divmod(int(ts), 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ns // 1_000_000:03d}Z"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert. ``ts``: ns UTC from the runner's clock; ``details``: JSON-able facts (kept
    as a read-only copy, so the record cannot change after it is built)."""

    kind: AlertKind
    ts: int
    message: str
    symbol: str | None = None
    trade_cycle_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(
            isinstance(self.kind, AlertKind),
            ConfigError("alert.kind", f"must be an AlertKind, got {self.kind!r}"),
        )
        check(
            _is_count(self.ts),
            ConfigError("alert.ts", f"must be int ns since the epoch, got {self.ts!r}"),
        )
        object.__setattr__(self, "ts", int(self.ts))  # numpy ints too, stored as int
        check(
            isinstance(self.message, str) and bool(self.message.strip()),
            ConfigError("alert.message", "must be non-empty text"),
        )
        details = dict(self.details)
        try:
            json.dumps(details, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigError("alert.details", f"must be JSON-able: {exc}") from None
        object.__setattr__(self, "details", MappingProxyType(details))

    def as_dict(self) -> dict[str, Any]:
        """The JSON document a webhook receives."""
        return {
            "kind": self.kind.value,
            "ts": self.ts,
            "time": iso_ns(self.ts),
            "symbol": self.symbol,
            "trade_cycle_id": self.trade_cycle_id,
            "message": self.message,
            "details": dict(self.details),
        }

    def line(self) -> str:
        """One line of text (newlines in the message or details are escaped)."""
        parts = [f"ALERT {self.kind.value}", iso_ns(self.ts)]
        if self.symbol:
            parts.append(f"symbol={self.symbol}")
        if self.trade_cycle_id:
            parts.append(f"cycle={self.trade_cycle_id}")
        text = " ".join(parts) + f": {self.message}"
        if self.details:
            text += " " + json.dumps(dict(self.details), sort_keys=True)
        return text.replace("\r", "\\r").replace("\n", "\\n")


@runtime_checkable
class Notifier(Protocol):
    """Anything that takes alerts. ``notify`` must not raise for a failed delivery."""

    def notify(self, alert: Alert) -> None: ...


class LogSink:
    """Each alert as one line through ``logging`` (logger ``backstop.alerts``): INFO for
    entries and fills, WARNING for stops hit, ERROR for the rest."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(LOGGER_NAME)

    def notify(self, alert: Alert) -> None:
        self.logger.log(_LEVEL[alert.kind], "%s", alert.line())


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what a log may show. User name, password, path
    and query are left out (webhook services put their secret in the path, e.g. Slack's
    ``/services/T../B../token``, or in the query)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    where = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
    return where + ("/..." if parts.path not in ("", "/") or parts.query else "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook answering with a redirect is a failed delivery, not a new destination."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookSink:
    """POST each alert as JSON (``Alert.as_dict``) to ``url``, waiting at most ``timeout_s``.

    Credentials in the URL (``https://user:secret@host/...``) are sent as HTTP Basic
    authorization, never logged. A delivery that fails (an HTTP status other than 2xx, a
    redirect, a refused connection, a timeout) is logged on ``backstop.alerts`` with the
    status and the redacted URL and counted in ``failed``; ``sent`` counts deliveries the
    server accepted and ``last_status`` holds the last outcome (an HTTP status or the
    connection error's text)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        logger: logging.Logger | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        check(
            parts.scheme in ("http", "https") and bool(parts.hostname),
            ConfigError("webhook.url", "must be an http:// or https:// URL with a host"),
        )
        check(
            isinstance(timeout_s, int | float)
            and math.isfinite(timeout_s)
            and 0 < timeout_s <= MAX_TIMEOUT_S,
            ConfigError("webhook.timeout_s", f"must be in (0, {MAX_TIMEOUT_S:g}] seconds"),
        )
        self.where = redact_url(url)
        self.timeout_s = float(timeout_s)
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        self.sent = 0
        self.failed = 0
        self.last_status: int | str | None = None
        netloc = parts.hostname if ":" not in (parts.hostname or "") else f"[{parts.hostname}]"
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        self._url = urllib.parse.urlunsplit(
            (parts.scheme, netloc, parts.path or "/", parts.query, "")
        )
        self._secrets = [s for s in (parts.username, parts.password, parts.path, parts.query) if s]
        self._secrets = [s for s in self._secrets if s != "/"]
        self._headers = {"Content-Type": "application/json", "User-Agent": "backstop-alerts"}
        if parts.username is not None:
            import base64

            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._opener = urllib.request.build_opener(_NoRedirect())

    def notify(self, alert: Alert) -> None:
        body = json.dumps(alert.as_dict(), sort_keys=True).encode()
        request = urllib.request.Request(self._url, data=body, headers=self._headers)
        try:
            with self._opener.open(request, timeout=self.timeout_s) as answer:
                status = int(answer.status)
        except urllib.error.HTTPError as exc:
            status = int(exc.code)
            exc.close()
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            self._failed(alert, f"{type(reason).__name__}: {self._scrub(str(reason))}")
            return
        if 200 <= status < 300:
            self.sent += 1
            self.last_status = status
            return
        self._failed(alert, status)

    def _failed(self, alert: Alert, status: int | str) -> None:
        self.failed += 1
        self.last_status = status
        what = f"HTTP {status}" if isinstance(status, int) else status
        self.logger.warning(
            "alert %s at %s not delivered to webhook %s: %s (%d failed so far)",
            alert.kind.value,
            iso_ns(alert.ts),
            self.where,
            what,
            self.failed,
        )

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class FanOut:
    """Hand each alert to every sink in order. A sink that raises (a bug in it) is logged
    with its traceback and counted in ``errors``; the other sinks still get the alert and
    the runner goes on."""

    def __init__(self, sinks: Iterable[Notifier], logger: logging.Logger | None = None) -> None:
        self.sinks = tuple(sinks)
        for sink in self.sinks:
            check(
                isinstance(sink, Notifier),
                ConfigError("alerts.sinks", f"{sink!r} has no notify(alert) method"),
            )
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        self.errors = 0

    def notify(self, alert: Alert) -> None:
        for sink in self.sinks:
            try:
                sink.notify(alert)
            except Exception:
                self.errors += 1
                self.logger.exception(
                    "alert sink %s raised on %s at %s",
                    type(sink).__name__,
                    alert.kind.value,
                    iso_ns(alert.ts),
                )


class SignalsWithoutOrders:
    """Raise ``NO_ORDERS_FROM_SIGNALS`` once when ``threshold`` approved signals of one
    strategy in a row produced zero orders.

    The runner calls ``observe`` once per window (a bar, a poll) with that window's counts.
    Approved signals accumulate per strategy while no order is sent; reaching the threshold
    sends one alert through ``notifier`` (and returns it). Further silent windows add to the
    count without a second alert; the first window with an order resets the count and
    re-arms the alarm."""

    def __init__(self, notifier: Notifier, threshold: int = DEFAULT_SILENT_SIGNALS) -> None:
        check(
            isinstance(threshold, int) and not isinstance(threshold, bool) and threshold >= 1,
            ConfigError("alerts.silent_signals", f"must be an int >= 1, got {threshold!r}"),
        )
        self.notifier = notifier
        self.threshold = threshold
        self._silent: dict[str, int] = {}
        self._raised: set[str] = set()

    def observe(
        self, ts: int, approved: int, orders: int, strategy: str = "default"
    ) -> Alert | None:
        """Count one window of ``strategy``: ``approved`` signals, ``orders`` sent."""
        for name, value in (("approved", approved), ("orders", orders)):
            check(
                _is_count(value),
                ConfigError(f"alerts.{name}", f"must be an int >= 0, got {value!r}"),
            )
        approved, orders = int(approved), int(orders)
        if orders > 0:
            self._silent[strategy] = 0
            self._raised.discard(strategy)
            return None
        silent = self._silent.get(strategy, 0) + approved
        self._silent[strategy] = silent
        if silent < self.threshold or strategy in self._raised:
            return None
        self._raised.add(strategy)
        alert = Alert(
            AlertKind.NO_ORDERS_FROM_SIGNALS,
            ts,
            f"{silent} approved signals of strategy {strategy} in a row sent no order",
            details={"strategy": strategy, "signals": silent, "threshold": self.threshold},
        )
        self.notifier.notify(alert)
        return alert

    def silent(self, strategy: str = "default") -> int:
        """Approved signals of ``strategy`` since its last order."""
        return self._silent.get(strategy, 0)
