"""A plain Python function as a strategy: ``Backtest(bars, my_fn, fast=5)``.

The README says a strategy is a function of bars returning an intent table; this makes that
literally true. ``my_fn(bars, **params)`` gets the validated bars (polars) and returns polars
or pandas. Its parameters are those of its signature after the first: a keyword the
function does not take is an error naming it (unless it takes ``**kwargs``), a parameter
without a default must be given, and a value must fit the default's type (an ``int``
default refuses ``10.7``, a ``bool`` default takes only ``True``/``False``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backstop.errors import ConfigError, check
from backstop.strategies.base import Param, Strategy

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True, slots=True)
class FunctionStrategy(Strategy):
    """A strategy whose parameters are read from its function's signature."""

    signature: inspect.Signature | None = None

    def resolve(self, values: dict[str, Any] | None = None) -> dict[str, Any]:
        """Defaults of the signature overlaid with ``values``, each checked against them."""
        values = dict(values or {})
        sig = self.signature
        assert sig is not None  # set by strategy_from_function, never by a user
        named = list(sig.parameters.values())[1:]
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in named)
        known = {
            p.name: p
            for p in named
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        }
        out: dict[str, Any] = {}
        for key, value in values.items():
            check(
                key in known or takes_any,
                ConfigError(
                    key, f"unknown parameter of strategy {self.name} (known: {sorted(known)})"
                ),
            )
            out[key] = _typed(key, value, known[key].default if key in known else _EMPTY)
        for name, p in known.items():
            if name in out or name == "prepared":
                continue
            check(
                p.default is not _EMPTY,
                ConfigError(name, f"parameter of strategy {self.name} has no default: give it"),
            )
            out[name] = p.default
        return out


def _typed(key: str, value: Any, default: Any) -> Any:
    """Check ``value`` against the type of ``default`` (numbers through ``Param``)."""
    if isinstance(default, bool):
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        check(isinstance(value, bool), ConfigError(key, f"expected True or False, got {value!r}"))
        return value
    if isinstance(default, int | float):
        return Param(key, type(default), default).parse(value)
    return value


def strategy_from_function(fn: Callable[..., Any]) -> FunctionStrategy:
    """Wrap ``fn(bars, **params)`` as a strategy named after it."""
    name = getattr(fn, "__name__", type(fn).__name__)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        raise ConfigError(
            "strategy", f"cannot read the parameters of {name!r}: pass a Python function"
        ) from None
    positional = [
        p
        for p in sig.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    check(
        bool(positional),
        ConfigError("strategy", f"{name} takes no bars argument: a strategy is fn(bars, **params)"),
    )
    return FunctionStrategy(
        name=name, fn=fn, params=(), doc=inspect.getdoc(fn) or "", signature=sig
    )
