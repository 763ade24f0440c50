"""Settings of the IBKR adapter: where the gateway listens and how long to wait for it.

Nothing here is secret: TWS and IB Gateway authenticate the person at the gateway itself;
the API socket only needs a host, a port and a client id. ``contract_months`` names the
contract month a plain futures root trades (``{"MES": "202512"}``); a dated symbol such as
``MESZ5`` carries its own month.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from backstop.errors import ConfigError, check

_SECONDS = (
    "connect_timeout_s",
    "request_timeout_s",
    "commission_wait_s",
    "reconnect_every_s",
)


@dataclass(frozen=True, slots=True)
class IBKRConfig:
    """Where and how to talk to a TWS / IB Gateway API socket.

    ``client_id`` is the API client id (orders are this client's; 0 is TWS's manual-order
    client and is refused here so that backstop never binds manual orders). ``account`` is
    the account to trade when the login manages several ("" : the only one).
    ``connect_timeout_s`` bounds the handshake and the start-up fetch of positions, orders
    and executions; ``request_timeout_s`` bounds every other request; ``commission_wait_s``
    bounds how long a fill waits for its commission report before it is reported without
    one (fee 0, logged). ``reconnect_every_s`` is the least time between two reconnect
    attempts after the socket dropped. ``history_days`` is how far back a request for the
    latest bars looks (the bar feed keeps only those after its last bar).
    ``max_requests_per_s`` is ib_async's throttle of messages to the gateway (TWS allows 50
    a second; 0 turns it off, for the loopback fake only)."""

    host: str = "127.0.0.1"
    port: int = 4002
    client_id: int = 1
    account: str = ""
    connect_timeout_s: float = 10.0
    request_timeout_s: float = 10.0
    commission_wait_s: float = 2.0
    reconnect_every_s: float = 5.0
    history_days: int = 2
    max_requests_per_s: int = 45
    contract_months: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(bool(self.host.strip()), ConfigError("host", "must not be empty"))
        check(
            isinstance(self.port, int) and 0 < self.port < 65536,
            ConfigError("port", f"must be a TCP port 1-65535, got {self.port!r}"),
        )
        check(
            isinstance(self.client_id, int) and self.client_id > 0,
            ConfigError(
                "client_id",
                f"must be a positive integer (0 is TWS's manual-order client), "
                f"got {self.client_id!r}",
            ),
        )
        for key in _SECONDS:
            value = getattr(self, key)
            check(
                isinstance(value, int | float) and math.isfinite(value) and value > 0,
                ConfigError(key, f"must be a positive number of seconds, got {value!r}"),
            )
        check(
            isinstance(self.history_days, int) and 1 <= self.history_days <= 30,
            ConfigError("history_days", f"must be 1-30 days, got {self.history_days!r}"),
        )
        check(
            isinstance(self.max_requests_per_s, int) and self.max_requests_per_s >= 0,
            ConfigError(
                "max_requests_per_s", f"must be an integer >= 0, got {self.max_requests_per_s!r}"
            ),
        )
        for root, month in self.contract_months.items():
            check(
                isinstance(month, str) and len(month) in (6, 8) and month.isdigit(),
                ConfigError(
                    f"contract_months[{root!r}]",
                    f"must be YYYYMM or YYYYMMDD, got {month!r}",
                ),
            )
