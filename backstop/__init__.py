"""backstop: a backtest/replay-first trading engine with one compiled decision core."""

from backstop.brokers.sim.backtest import run_backtest
from backstop.data import load_bars, sample_bars
from backstop.domain.enums import ReasonCode
from backstop.domain.instruments import Instrument
from backstop.engine.config import BacktestConfig
from backstop.engine.result import BacktestResult
from backstop.errors import BackstopError, ConfigError, DataError
from backstop.runners.backtest import Backtest

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
