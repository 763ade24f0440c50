"""Composition: the only layer that imports engine, brokers, strategies and replay together
(backtest facade, step-by-step and replay runs, parameter and guardrail sweeps,
walk-forward splits).

``plot_heatmap`` and the guardrail sweep load on first use (PEP 562): ``import backstop``
(every command, every sweep worker) then skips matplotlib and the replay stack, ~0.4 s,
until a plot or a guardrail sweep asks for them.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# eager: ``sweep`` is also a submodule's name, and importing that submodule would rebind a
# lazy ``backstop.runners.sweep`` to the module; these are light
from backstop.runners.sweep import optimize, sweep
from backstop.runners.walkforward import walk_forward

_HOMES = {
    "best_guardrails": "backstop.runners.guardrails",
    "guardrail_sweep": "backstop.runners.guardrails",
    "plot_heatmap": "backstop.engine.plot",
}

__all__ = [
    "best_guardrails",
    "guardrail_sweep",
    "optimize",
    "plot_heatmap",
    "sweep",
    "walk_forward",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'backstop.runners' has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
