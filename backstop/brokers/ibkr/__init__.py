"""The Interactive Brokers adapter (ib_async): config, client (I/O), parsing (pure), codes
(what IB's error messages mean), translate (each event once), and the adapter.

ib_async's types stay inside ``parsing`` and ``client``; everything else speaks backstop's
commands, events and snapshots. ``IBKRBroker`` implements the engine's ``BrokerPort``.
"""

from backstop.brokers.ibkr.adapter import IBKRBroker
from backstop.brokers.ibkr.config import IBKRConfig

__all__ = ["IBKRBroker", "IBKRConfig"]
