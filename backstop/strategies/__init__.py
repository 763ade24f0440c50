"""Strategies: vectorised intent generators, registered by name."""

from backstop.domain.intents import INTENT_SCHEMA, conform_intents
from backstop.strategies import bear_trap as _bear_trap  # noqa: F401  (registers itself)
from backstop.strategies import ema_clouds as _ema_clouds  # noqa: F401  (registers itself)
from backstop.strategies import hysteresis as _hysteresis  # noqa: F401  (registers itself)
from backstop.strategies import k_templates as _k_templates  # noqa: F401  (registers itself)
from backstop.strategies import sma_cross as _sma_cross  # noqa: F401  (registers itself)
from backstop.strategies.base import (
    Param,
    Strategy,
    get_strategy,
    latest_intents,
    register,
)
from backstop.strategies.signals import crossover_intents, signal_intents
from backstop.strategies.trailing import stop_updates

__all__ = [
    "INTENT_SCHEMA",
    "Param",
    "Strategy",
    "conform_intents",
    "crossover_intents",
    "get_strategy",
    "latest_intents",
    "register",
    "signal_intents",
    "stop_updates",
]
