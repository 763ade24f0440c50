"""A loopback fake of Alpaca's trading API, market data bars and trade_updates stream.

See ``README.md`` next to this file and ``FakeAlpaca`` in ``server.py``.
"""

from __future__ import annotations

from backstop.testing.fake_alpaca.server import FakeAlpaca

__all__ = ["FakeAlpaca"]
