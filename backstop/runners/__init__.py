"""Composition: the only layer that imports engine, brokers, strategies and replay together
(backtest facade, step-by-step and replay runs, parameter and guardrail sweeps,
walk-forward splits)."""

from backstop.engine.plot import plot_heatmap
from backstop.runners.guardrails import best_guardrails, guardrail_sweep
from backstop.runners.sweep import optimize, sweep
from backstop.runners.walkforward import walk_forward

__all__ = [
    "best_guardrails",
    "guardrail_sweep",
    "optimize",
    "plot_heatmap",
    "sweep",
    "walk_forward",
]
