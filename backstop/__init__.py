"""backstop: a backtest/replay-first trading engine with one compiled decision core.

The public names below are imported on first use (PEP 562): ``import backstop`` costs almost
nothing, so a ``backstop`` command (which imports this package first) can start reading its
bars before the engine and numba are imported, and ``from backstop import Backtest`` still
works as before.
"""

from __future__ import annotations

import contextlib as _contextlib
import gc as _gc
import importlib as _importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

# each public name (``__all__``), and the module that defines it
_HOME = {
    "BackstopError": "backstop.errors",
    "Backtest": "backstop.runners.backtest",
    "BacktestConfig": "backstop.engine.config",
    "BacktestResult": "backstop.engine.result",
    "ConfigError": "backstop.errors",
    "DataError": "backstop.errors",
    "Instrument": "backstop.domain.instruments",
    "ReasonCode": "backstop.domain.enums",
    "load_bars": "backstop.data",
    "run_backtest": "backstop.brokers.sim.backtest",
    "sample_bars": "backstop.data",
}

__all__ = [
    "BackstopError",
    "Backtest",
    "BacktestConfig",
    "BacktestResult",
    "ConfigError",
    "DataError",
    "Instrument",
    "ReasonCode",
    "load_bars",
    "run_backtest",
    "sample_bars",
]

if TYPE_CHECKING:
    from backstop.brokers.sim.backtest import run_backtest
    from backstop.data import load_bars, sample_bars
    from backstop.domain.enums import ReasonCode
    from backstop.domain.instruments import Instrument
    from backstop.engine.config import BacktestConfig
    from backstop.engine.result import BacktestResult
    from backstop.errors import BackstopError, ConfigError, DataError
    from backstop.runners.backtest import Backtest


def __getattr__(name: str) -> Any:
    """Import a public name's module the first time the name is used, and keep the name."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'backstop' has no attribute {name!r}")
    with quiet_imports():
        value = getattr(_importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})


@_contextlib.contextmanager
def quiet_imports() -> Iterator[None]:
    """Pause the cyclic garbage collector while the engine is imported, then restore it as
    it was: importing it creates ~130k objects and no garbage, so the collector only costs
    time while it runs (35 ms of every command's start)."""
    collecting = _gc.isenabled()
    _gc.disable()
    try:
        yield
    finally:
        if collecting:
            _gc.enable()
