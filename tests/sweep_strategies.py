"""Strategies for tests/test_sweep.py that fail on purpose, importable by sweep workers."""

from __future__ import annotations

from typing import Any

import polars as pl

from backstop.errors import ConfigError
from backstop.strategies.base import Strategy, get_strategy


def _picky(bars: pl.DataFrame, **params: Any) -> pl.DataFrame:
    """sma_cross, except that fast=7 is bad input and fast=9 a bug."""
    if params["fast"] == 7:
        raise ConfigError("fast", "seven is refused by this strategy")
    if params["fast"] == 9:
        return 1 / 0  # type: ignore[return-value]
    return get_strategy("sma_cross").fn(bars, **params)


PICKY = Strategy("picky", _picky, get_strategy("sma_cross").params)
