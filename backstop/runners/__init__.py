"""Composition: the only layer that imports engine, brokers, strategies and replay together
(backtest facade, step-by-step and replay runs, parameter and guardrail sweeps,
walk-forward splits).

``plot_heatmap`` and the guardrail sweep are imported on first use, so importing one runner
(the ahead-of-time build at install, the replay, every command) never loads matplotlib or the
replay stack; the sweeps themselves are ``Backtest.sweep`` / ``.optimize`` / ``.walk_forward``
(``backstop.runners.sweep`` and ``backstop.runners.walkforward`` underneath).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "best_guardrails": "backstop.runners.guardrails",
    "guardrail_sweep": "backstop.runners.guardrails",
    "plot_heatmap": "backstop.engine.plot",
}

__all__ = ["best_guardrails", "guardrail_sweep", "plot_heatmap"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
