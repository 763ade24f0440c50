"""Walk-forward splits: optimise on each train window, judge on the window that follows.

The distinct timestamps of the bars are cut into ``folds`` consecutive windows of equal
length; in each, the first ``train_frac`` is the train window and the rest its test window.
The best parameters of each train window (by ``maximize``) run on its test window, which they
have never seen, so the table shows how much of an in-sample best was overfit. Each window is
a backtest of its own: it starts flat with the initial cash, and indicators warm up inside it.

Each train window's grid is a sweep (``backstop.runners.sweep``) on the chosen backend:
worker processes on this machine, or Ray (``backend="ray"``, ``address`` as for a sweep; a
local Ray is started once for all the folds, not once per fold). The one test run of each
fold runs in this process. Either way the table is the same, row for row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from backstop.errors import ConfigError
from backstop.runners.sweep import (
    Constraint,
    Objective,
    backtest_for,
    best_row,
    check_backend,
    check_objective,
    job_of,
    score_of,
    sweep,
)

if TYPE_CHECKING:
    from backstop.runners.backtest import Backtest


def windows(ts: np.ndarray, folds: int, train_frac: float) -> list[tuple[int, int, int, int]]:
    """(train start, train end, test start, test end) timestamps, ends inclusive, per fold."""
    if folds < 1:
        raise ConfigError("folds", f"must be at least 1, got {folds}")
    if not 0.0 < train_frac < 1.0:
        raise ConfigError("train_frac", f"must be between 0 and 1 (exclusive), got {train_frac}")
    stamps = np.unique(ts)
    edges = np.linspace(0, len(stamps), folds + 1).astype(np.int64)
    out = []
    for k in range(folds):
        lo, hi = int(edges[k]), int(edges[k + 1])
        cut = lo + int((hi - lo) * train_frac)
        if cut - lo < 2 or hi - cut < 2:
            raise ConfigError(
                "folds",
                f"window {k} has {hi - lo} timestamps: too few for a train and a test part "
                f"(use fewer folds or more bars)",
            )
        out.append((int(stamps[lo]), int(stamps[cut - 1]), int(stamps[cut]), int(stamps[hi - 1])))
    return out


def walk_forward(
    bt: Backtest,
    *,
    folds: int = 4,
    train_frac: float = 0.75,
    maximize: Objective = "sharpe",
    constraint: Constraint | None = None,
    processes: int | None = None,
    progress: bool | None = None,
    backend: str = "processes",
    address: str | None = None,
    **params: Any,
) -> pl.DataFrame:
    """One row per fold: its windows, the best parameters on the train window, and the
    score, return and trade count of those parameters on train and on test. ``backend``
    and ``address`` pick where each train window's sweep runs, as for ``sweep``."""
    check_objective(maximize)
    check_backend(backend, address)
    if backend != "ray":
        return _folds(bt, folds, train_frac, maximize, constraint, processes, progress, params)
    from backstop.runners.ray_pool import ray_session

    with ray_session(address):  # one Ray for every fold (a local one is started once)
        return _folds(
            bt, folds, train_frac, maximize, constraint, processes, progress, params, "ray"
        )


def _folds(
    bt: Backtest,
    folds: int,
    train_frac: float,
    maximize: Objective,
    constraint: Constraint | None,
    processes: int | None,
    progress: bool | None,
    params: dict[str, Any],
    backend: str = "processes",
) -> pl.DataFrame:
    """The walk-forward table, each train sweep on ``backend`` (Ray joined by the caller)."""
    from backstop.engine.prepare import PreparedBars

    names = list(params)
    job = job_of(bt)
    label = maximize if isinstance(maximize, str) else "score"
    rows = []
    for k, (a, b, c, d) in enumerate(windows(bt.prepared.arrays.ts, folds, train_frac)):
        part = {}
        for name, lo, hi in (("train", a, b), ("test", c, d)):
            bars = bt.prepared.bars.filter(pl.col("ts").is_between(lo, hi))
            part[name] = backtest_for(job, PreparedBars.of(bars), {})
        table = sweep(
            part["train"],
            constraint=constraint,
            processes=processes,
            progress=progress,
            backend=backend,
            **params,
        )
        best = best_row(table, names, maximize)
        chosen = {n: best[n] for n in names}
        tested = backtest_for(job, part["test"].prepared, chosen).run()
        test_stats = tested.stats | chosen
        rows.append(
            {"fold": k, "train_start": a, "train_end": b, "test_start": c, "test_end": d}
            | chosen
            | {
                f"train_{label}": score_of(best, maximize),
                f"test_{label}": score_of(test_stats, maximize),
                "train_return": best["total_return"],
                "test_return": test_stats["total_return"],
                "train_trades": best["trade_count"],
                "test_trades": test_stats["trade_count"],
            }
        )
    stamps = ("train_start", "train_end", "test_start", "test_end")
    return pl.DataFrame(rows).with_columns(pl.col(stamps).cast(pl.Datetime("ns", "UTC")))
