"""backstop: a backtest/replay-first trading engine with one compiled decision core."""

import gc as _gc

# Importing the engine creates ~130k objects and no garbage, so the cyclic collector only
# costs time while it runs (35 ms of every command's start): it is paused for the imports
# and switched back on after them, as it was.
_collecting = _gc.isenabled()
_gc.disable()
try:
    from backstop.brokers.sim.backtest import run_backtest
    from backstop.data import load_bars, sample_bars
    from backstop.domain.enums import ReasonCode
    from backstop.domain.instruments import Instrument
    from backstop.engine.config import BacktestConfig
    from backstop.engine.result import BacktestResult
    from backstop.errors import BackstopError, ConfigError, DataError
    from backstop.runners.backtest import Backtest
finally:
    if _collecting:
        _gc.enable()
    del _collecting

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
