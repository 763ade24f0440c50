"""The notebook entry point: bars + a strategy (registered name, ``Strategy`` or plain
function) -> ``run_backtest`` -> ``BacktestResult``; and the research doors on it (sweeps,
optimisation, walk-forward splits).

It composes the engine (``run_backtest``, which takes any intent table) with the strategy
registry, so it lives in the composition layer: the engine never imports strategies.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import polars as pl

from backstop.brokers.sim.backtest import ProgressFn, run_backtest
from backstop.domain.instruments import Instrument
from backstop.engine.config import BacktestConfig
from backstop.engine.learning_state import LearningState
from backstop.engine.prepare import (
    PreparedBars,
    is_pandas,
    prepare_bars,
    prepare_checked,
    profile_of,
)
from backstop.engine.profile import RiskProfile
from backstop.engine.result import BacktestResult
from backstop.errors import ConfigError, check
from backstop.runners.bars_in import frame_checked, load_checked
from backstop.strategies.base import Strategy, get_strategy


class Backtest:
    """Notebook entry point: ``Backtest(bars, "sma_cross", fast=10).run()``.

    ``bars`` is a polars or pandas frame (validated on the way in; a pandas ``DatetimeIndex``
    is its time), a path to CSV, Parquet or DuckDB, a glob, or a list of paths (one panel);
    ``symbol`` names the symbol of bars without a symbol column and ``tz`` the zone of times
    written without one (``backstop.runners.bars_in``; ``data_info`` says what was assumed).
    ``strategy`` is a registered name, ``"file.py:fn"`` or ``"package.module:fn"``, a
    ``Strategy`` or a plain function ``fn(bars, **params)`` returning an intent table; extra
    keywords are its parameters.
    """

    def __init__(
        self,
        bars: Any,
        strategy: str | Strategy | Callable[..., Any] = "sma_cross",
        *,
        config: BacktestConfig | None = None,
        instruments: dict[str, Instrument] | None = None,
        profile: RiskProfile | str | None = None,
        learning: LearningState | None = None,
        symbol: str | None = None,
        tz: str | None = None,
        **params: Any,
    ) -> None:
        self.prepared, self.data_info = _prepared(bars, symbol, tz)
        self.tz = tz  # the zone the result's frames show times in (backstop.engine.zoned)
        self.bars = self.prepared.bars
        self.strategy = _strategy_of(strategy)
        self.params = self.strategy.resolve(params)
        self.data_warnings = self.strategy.check_data(self.prepared.counts, self.params)
        self.config = config or BacktestConfig()
        check(
            isinstance(self.config, BacktestConfig),
            ConfigError("config", f"expected a BacktestConfig, got {type(self.config).__name__}"),
        )
        self.profile = profile_of(profile)
        self.instruments = instruments
        self.learning = learning  # a previous run's learning state, restored at the start

    def intents(self) -> pl.DataFrame:
        """The strategy's intent table over the whole history."""
        return self.strategy.intents(self.bars, self.params, prepared=self.prepared)

    def run(self, progress: ProgressFn | None = None) -> BacktestResult:
        """Run the strategy through the pipeline against the simulated exchange."""
        t0 = time.perf_counter()
        intents = self.intents()
        label = f"{self.strategy.name}:{sorted(self.params.items())}"
        result = run_backtest(
            self.prepared,
            intents,
            self.config,
            instruments=self.instruments,
            label=label,
            progress=progress,
            profile=self.profile,
            conformed=True,
            learning=self.learning,
        )
        result.run_seconds = time.perf_counter() - t0
        result.params = dict(self.params)
        result.strategy_name = self.strategy.name
        result.warnings = [*self.data_warnings, *result.warnings]
        result.data_info = self.data_info.as_dict() if self.data_info is not None else {}
        result.tz = self.tz
        return result

    # ---- research: sweeps, optimisation and walk-forward splits over these bars -----------
    def sweep(
        self,
        *,
        constraint: Any = None,
        processes: int | None = None,
        progress: bool | None = None,
        backend: str = "processes",
        address: str | None = None,
        **params: Any,
    ) -> pl.DataFrame:
        """Every combination of ``params`` (values or iterables): a polars frame with one
        row of stats per combination, in grid order; ``backend="ray"`` runs them on Ray
        (``address``: the cluster); see ``backstop.runners.sweep``."""
        from backstop.runners.sweep import sweep  # sweep builds on Backtest: import on use

        return sweep(
            self,
            constraint=constraint,
            processes=processes,
            progress=progress,
            backend=backend,
            address=address,
            **params,
        )

    def optimize(
        self,
        *,
        maximize: Any = "sharpe",
        constraint: Any = None,
        processes: int | None = None,
        progress: bool | None = None,
        backend: str = "processes",
        address: str | None = None,
        **params: Any,
    ) -> tuple[BacktestResult, pl.DataFrame]:
        """Sweep and return (the best combination's result, the sweep table)."""
        from backstop.runners.sweep import optimize

        return optimize(
            self,
            maximize=maximize,
            constraint=constraint,
            processes=processes,
            progress=progress,
            backend=backend,
            address=address,
            **params,
        )

    def walk_forward(
        self, *, folds: int = 4, train_frac: float = 0.75, **kwargs: Any
    ) -> pl.DataFrame:
        """Best parameters of each train window judged on the test window after it; see
        ``backstop.runners.walkforward``."""
        from backstop.runners.walkforward import walk_forward

        return walk_forward(self, folds=folds, train_frac=train_frac, **kwargs)


def _prepared(bars: Any, symbol: str | None, tz: str | None) -> tuple[PreparedBars, Any]:
    """Prepared bars and what their load assumed (None for bars already prepared)."""
    if isinstance(bars, PreparedBars):
        check(
            symbol is None and tz is None,
            ConfigError(
                "symbol" if symbol is not None else "tz",
                "applies to bars to load, not to bars already prepared",
            ),
        )
        return bars, None
    if isinstance(bars, str | os.PathLike | list | tuple):
        checked, info = load_checked(bars, symbol=symbol, tz=tz)
        source = os.fspath(bars) if isinstance(bars, str | os.PathLike) else "bars"
    elif isinstance(bars, pl.DataFrame | pl.LazyFrame) or is_pandas(bars):
        checked, info = frame_checked(bars, symbol=symbol, tz=tz)
        source = "bars"
    else:
        return prepare_bars(bars), None  # refused there, naming the type
    return prepare_checked(checked, source), info


def _strategy_of(strategy: Any) -> Strategy:
    """A registered name, ``file.py:fn`` / ``module:fn``, a ``Strategy``, or a plain
    function wrapped as one."""
    if isinstance(strategy, str) and ":" in strategy:
        from backstop.strategies.function import strategy_from_function
        from backstop.strategies.loader import load_function

        return strategy_from_function(load_function(strategy))
    if isinstance(strategy, str):
        return get_strategy(strategy)
    if isinstance(strategy, Strategy):
        return strategy
    if callable(strategy):
        from backstop.strategies.function import strategy_from_function

        return strategy_from_function(strategy)
    raise ConfigError(
        "strategy",
        "expected a strategy name, a Strategy or a function of bars, got "
        f"{type(strategy).__name__}",
    )
