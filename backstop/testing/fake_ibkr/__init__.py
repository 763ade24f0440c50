"""A loopback fake of an Interactive Brokers TWS / IB Gateway that the real ib_async speaks to.

See ``README.md`` next to this file and ``FakeIBKR`` in ``server.py``.
"""

from __future__ import annotations

from backstop.testing.fake_ibkr.server import FakeIBKR

__all__ = ["FakeIBKR"]
