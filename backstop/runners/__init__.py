"""Composition over the engine: parameter sweeps, optimisation and walk-forward splits."""

from backstop.engine.plot import plot_heatmap
from backstop.runners.sweep import optimize, sweep
from backstop.runners.walkforward import walk_forward

__all__ = ["optimize", "plot_heatmap", "sweep", "walk_forward"]
