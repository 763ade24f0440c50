"""Composition: the only layer that imports engine, brokers, strategies and replay together
(backtest facade, step-by-step and replay runs, parameter sweeps, walk-forward splits)."""

from backstop.engine.plot import plot_heatmap
from backstop.runners.sweep import optimize, sweep
from backstop.runners.walkforward import walk_forward

__all__ = ["optimize", "plot_heatmap", "sweep", "walk_forward"]
