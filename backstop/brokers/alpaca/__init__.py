"""The Alpaca adapter (alpaca-py): config, client and stream (I/O), parsing (pure), ids,
translate, and the adapter.

alpaca-py's types stay inside ``parsing``, ``client`` and ``stream``; everything else speaks
backstop's commands, events and snapshots. ``AlpacaBroker`` implements the engine's
``BrokerPort``.
"""

from backstop.brokers.alpaca.adapter import AlpacaBroker
from backstop.brokers.alpaca.config import AlpacaConfig, AlpacaKeys

__all__ = ["AlpacaBroker", "AlpacaConfig", "AlpacaKeys"]
