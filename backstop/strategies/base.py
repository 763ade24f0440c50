"""The Strategy interface: a function of bars (and parameters) returning a sparse intent table.

A strategy never sees a broker, a position or an order: it says what it would like to do at a
bar's close (enter long, exit, ...) and the pipeline decides what is actually sent. Backtests
call it once on the whole history; live, the same function runs on a rolling window and its
newest rows are the live signals (``latest_intents``), so research and production share code.
The intent table's columns and their checks are the engine's input contract:
``backstop.domain.intents``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from backstop.domain.intents import conform_intents
from backstop.errors import ConfigError, check

IntentFn = Callable[..., pl.DataFrame]


@dataclass(frozen=True, slots=True)
class Param:
    """One strategy parameter: its type, default and allowed range."""

    name: str
    kind: type
    default: float | int
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""

    def parse(self, raw: Any) -> float | int:
        """Convert and range-check a value (e.g. from ``--param fast=10``); name it on error."""
        try:
            if isinstance(raw, bool):
                raise TypeError  # True is 1 to Python, never a window length or a price
            value = self.kind(raw) if not isinstance(raw, str) else self.kind(float(raw))
            if self.kind is int and not float(raw).is_integer():
                raise ValueError  # fast=10.7 must not run as 10
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(self.name, f"expected {self.kind.__name__}, got {raw!r}") from None
        check(math.isfinite(float(value)), ConfigError(self.name, f"must be finite, got {raw!r}"))
        if self.minimum is not None:
            check(
                value >= self.minimum,
                ConfigError(self.name, f"must be >= {self.minimum}, got {value}"),
            )
        if self.maximum is not None:
            check(
                value <= self.maximum,
                ConfigError(self.name, f"must be <= {self.maximum}, got {value}"),
            )
        return value


@dataclass(frozen=True, slots=True)
class Strategy:
    """A named intent generator with declared parameters."""

    name: str
    fn: IntentFn
    params: tuple[Param, ...]
    doc: str = ""
    validate: Callable[[dict[str, Any]], None] | None = None
    """Checks that span parameters (``fast < slow``); raises ``ConfigError`` naming one."""
    bars_needed: Callable[[dict[str, Any]], tuple[str, int]] | None = None
    """(parameter, bars): the fewest bars of one symbol the strategy can signal on at all."""

    def resolve(self, values: dict[str, Any] | None = None) -> dict[str, float | int]:
        """Defaults overlaid with ``values``; unknown or out-of-range parameters are errors."""
        values = dict(values or {})
        known = {p.name: p for p in self.params}
        for key in values:
            check(
                key in known,
                ConfigError(
                    key, f"unknown parameter of strategy {self.name} (known: {sorted(known)})"
                ),
            )
        resolved = {
            p.name: p.parse(values[p.name]) if p.name in values else p.default for p in self.params
        }
        if self.validate is not None:
            self.validate(resolved)
        return resolved

    def check_data(self, counts: dict[str, int], params: dict[str, Any]) -> list[str]:
        """Refuse parameters the data is too short for; warn about symbols that are.

        ``counts`` is the number of bars of each symbol. A window longer than every symbol's
        history can never signal: that run would "succeed" with no trades, so it is an error
        naming the parameter. Symbols shorter than the window while others are long enough
        are listed in a warning.
        """
        if self.bars_needed is None or not counts:
            return []
        name, needed = self.bars_needed(params)
        longest = max(counts.values())
        check(
            longest >= needed,
            ConfigError(
                name,
                f"{params[name]} needs at least {needed} bars of a symbol to signal, but the "
                f"longest symbol has {longest}: the run could not trade at all",
            ),
        )
        short = sorted(symbol for symbol, n in counts.items() if n < needed)
        if not short:
            return []
        return [
            f"{len(short)} symbols have fewer than the {needed} bars {name}={params[name]} needs "
            f"and cannot signal: {', '.join(short[:5])}{' ...' if len(short) > 5 else ''}"
        ]

    def intents(
        self, bars: pl.DataFrame, params: dict[str, Any] | None = None, prepared: Any = None
    ) -> pl.DataFrame:
        """Run the strategy over ``bars`` and return its intent table, schema-checked.

        ``prepared`` (a ``PreparedBars`` of the same bars) is passed on to strategies that
        declare a ``prepared`` keyword, so array-based strategies reuse the engine's arrays.
        """
        if not isinstance(bars, pl.DataFrame):
            from backstop.data import load_bars_frame

            bars = load_bars_frame(bars, source="bars")  # pandas (validated), or refused
        resolved = self.resolve(params)
        if prepared is not None and "prepared" in inspect.signature(self.fn).parameters:
            out = self.fn(bars, prepared=prepared, **resolved)
        else:
            out = self.fn(bars, **resolved)
        return conform_intents(
            out, strategy_id=self.name, argument=f"strategy {self.name}: its return value"
        )


_REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    """Make a strategy available by name (CLI ``--strategy`` and ``Backtest(strategy=...)``)."""
    _REGISTRY[strategy.name] = strategy
    return strategy


def get_strategy(name: str) -> Strategy:
    """Look a strategy up by name; an unknown name is an error listing the known ones."""
    check(
        name in _REGISTRY,
        ConfigError("strategy", f"unknown strategy {name!r} (known: {sorted(_REGISTRY)})"),
    )
    return _REGISTRY[name]


def latest_intents(
    strategy: Strategy, window: pl.DataFrame, params: dict[str, Any] | None = None
) -> pl.DataFrame:
    """The live signal: the strategy on a rolling window, keeping only its newest bar's rows."""
    if not isinstance(window, pl.DataFrame):
        from backstop.data import load_bars_frame

        window = load_bars_frame(window, source="window")  # pandas (validated), or refused
    intents = strategy.intents(window, params)
    if window.is_empty():
        return intents
    newest = window.get_column("ts").max()
    return intents.filter(pl.col("ts") == newest)
