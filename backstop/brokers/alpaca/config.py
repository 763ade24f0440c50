"""Settings of the Alpaca adapter, and its keys, which come only from the environment.

``AlpacaConfig`` holds what may be written down (paper or live, endpoint overrides for the
loopback fake, timeouts); ``AlpacaKeys`` holds the key id and secret, read from
``APCA_API_KEY_ID`` and ``APCA_API_SECRET_KEY`` and nowhere else. Neither the keys' repr
nor any error message built here contains a key or a secret: they end up in logs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from backstop.errors import ConfigError, check

KEY_ID_VAR = "APCA_API_KEY_ID"
SECRET_VAR = "APCA_API_SECRET_KEY"
# endpoint overrides from the environment (``AlpacaConfig.from_env``): a proxy, or a
# loopback fake Alpaca standing in for the real one in tests
URL_VARS = {
    "rest_url": "APCA_API_BASE_URL",
    "data_url": "APCA_API_DATA_URL",
    "stream_url": "APCA_API_STREAM_URL",
}


@dataclass(frozen=True, slots=True)
class AlpacaConfig:
    """Where and how to talk to Alpaca (never the keys: see ``AlpacaKeys``).

    ``rest_url``/``data_url``/``stream_url`` override alpaca-py's endpoints (the loopback
    fake; None: Alpaca's own paper or live endpoints per ``paper``). ``request_timeout_s``
    bounds every HTTP request (alpaca-py sets none). ``retry_wait_s`` is alpaca-py's pause
    between its own retries of a 429/504 answer (3 s by default at alpaca-py).
    ``reconnect_min_s``/``reconnect_max_s`` bound the stream's back-off before a reconnect.
    ``resync_lookback_s`` is how far back a re-sync after a reconnect reads closed orders
    and fills. ``stop_timeout_s`` bounds how long stopping the stream thread may take."""

    paper: bool = True
    rest_url: str | None = None
    data_url: str | None = None
    stream_url: str | None = None
    request_timeout_s: float = 10.0
    retry_wait_s: float = 1.0
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0
    resync_lookback_s: float = 86_400.0
    stop_timeout_s: float = 8.0

    @classmethod
    def from_env(cls, paper: bool, environ: Mapping[str, str] | None = None) -> AlpacaConfig:
        """Alpaca's own endpoints (paper or live), unless ``APCA_API_BASE_URL`` (trading),
        ``APCA_API_DATA_URL`` (market data; default: the trading URL) or
        ``APCA_API_STREAM_URL`` (trade updates) name others; a malformed one is a
        ``ConfigError`` naming the variable."""
        env = os.environ if environ is None else environ
        urls: dict[str, str] = {}
        for key, var in URL_VARS.items():
            url = env.get(var, "").strip()
            if url:
                check(
                    url.startswith(("http://", "https://", "ws://", "wss://")),
                    ConfigError(var, f"must be an http(s):// or ws(s):// URL, got {url!r}"),
                )
                urls[key] = url
        return cls(paper=paper, **urls)

    def __post_init__(self) -> None:
        for key in (
            "request_timeout_s",
            "reconnect_min_s",
            "reconnect_max_s",
            "resync_lookback_s",
            "stop_timeout_s",
        ):
            value = getattr(self, key)
            check(
                isinstance(value, int | float) and math.isfinite(value) and value > 0,
                ConfigError(key, f"must be a positive number of seconds, got {value!r}"),
            )
        check(
            math.isfinite(self.retry_wait_s) and self.retry_wait_s >= 0,
            ConfigError("retry_wait_s", f"must be >= 0 seconds, got {self.retry_wait_s!r}"),
        )
        for key in ("rest_url", "data_url", "stream_url"):
            url = getattr(self, key)
            check(
                url is None or url.startswith(("http://", "https://", "ws://", "wss://")),
                ConfigError(key, f"must be an http(s):// or ws(s):// URL, got {url!r}"),
            )


@dataclass(frozen=True, slots=True)
class AlpacaKeys:
    """The API key id and secret. Their repr and str name the variables, never the values."""

    key_id: str = field(repr=False)
    secret: str = field(repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AlpacaKeys:
        """Read the keys from the environment (``environ``: ``os.environ`` unless given); a
        missing or empty one is a ``ConfigError`` naming the variable."""
        env = os.environ if environ is None else environ
        values = []
        for var in (KEY_ID_VAR, SECRET_VAR):
            value = env.get(var, "").strip()
            check(bool(value), ConfigError(var, "is not set in the environment"))
            values.append(value)
        return cls(values[0], values[1])

    def __repr__(self) -> str:
        return f"AlpacaKeys({KEY_ID_VAR}=<set>, {SECRET_VAR}=<set>)"

    __str__ = __repr__

    def redact(self, text: str) -> str:
        """``text`` with the key id and secret replaced: for any message that quotes what a
        server or library said, which could echo a header back."""
        for secret in (self.secret, self.key_id):
            text = text.replace(secret, "<redacted>")
        return text
