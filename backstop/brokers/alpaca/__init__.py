"""The Alpaca adapter (alpaca-py): config, client (I/O), parsing (pure), ids, translate, adapter.

alpaca-py's types stay inside ``parsing`` and ``client``; everything else speaks backstop's
commands, events and snapshots. ``AlpacaBroker`` implements the engine's ``BrokerPort``.
"""

from backstop.brokers.alpaca.adapter import AlpacaBroker
from backstop.brokers.alpaca.config import AlpacaConfig, AlpacaKeys

__all__ = ["AlpacaBroker", "AlpacaConfig", "AlpacaKeys"]
