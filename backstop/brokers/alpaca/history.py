"""Alpaca's historical bars as a fetch function: (symbols, timeframe, start, end) -> bars.

``backstop data fetch`` plugs a broker in through one such function (``backstop.runners.fetch``
names the shape). This one asks alpaca-py's ``StockHistoricalDataClient`` (through
``AlpacaClient``, so errors are backstop's and the keys never appear in a message), which
follows Alpaca's pages to the end; ``limit`` bounds how many bars it may collect in all.
Prices are Alpaca's defaults: raw (not split-adjusted), the account's default feed.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from backstop.brokers.alpaca.client import AlpacaClient
from backstop.brokers.alpaca.config import AlpacaConfig, AlpacaKeys

BarsFetch = Callable[[list[str], str, int, int], pl.DataFrame]


def bars_fetcher(config: AlpacaConfig, keys: AlpacaKeys, *, limit: int) -> BarsFetch:
    """A function reading ``symbols``' bars of ``timeframe`` (``1Min``, ``1Day``...) with
    ``start_ns <= ts <= end_ns`` (ns UTC) in ``BAR_SCHEMA``, at most ``limit`` bars in all."""
    client = AlpacaClient(config, keys)

    def fetch(symbols: list[str], timeframe: str, start_ns: int, end_ns: int) -> pl.DataFrame:
        return client.bars(symbols, timeframe, start_ns, end_ns, limit=limit)

    return fetch
