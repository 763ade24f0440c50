"""Parameter sweeps, optimisation and walk-forward splits over one set of prepared bars.

Every combination of the grid runs the whole pipeline (guardrails included) and contributes
one row of stats. Rows come back in grid order (the product of the values in the order given)
whatever the number of processes, so a sweep's table is deterministic.

Processes: by default one per core (``backstop.runners.pool``): the calling process runs
combinations too, beside one worker for each other core. The bars go to the workers once,
through one temporary Arrow IPC file each worker maps when it starts (never pickled per
task). Workers are fresh interpreters that never run the caller's script, so a
script without an ``if __name__ == "__main__"`` guard works too; the price is that the
strategy must live in an importable module (registered strategies do). Constraints and
``maximize`` functions run in the calling process only, so lambdas are fine.
``backend="ray"`` runs Ray actors instead (``backstop.runners.ray_pool``): the same rows in
the same order.
"""

from __future__ import annotations

import itertools
import math
import os
import pickle
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import polars as pl

from backstop.errors import ConfigError

if TYPE_CHECKING:
    from backstop.engine.result import BacktestResult
    from backstop.runners.backtest import Backtest

BACKENDS = ("processes", "ray")
Constraint = Callable[[dict[str, Any]], bool]
Objective = str | Callable[[dict[str, Any]], float]

# stats keys that are not one number per run, left out of the table
_NOT_COLUMNS = ("verdicts_by_reason",)


def grid(params: dict[str, Any], constraint: Constraint | None = None) -> list[dict[str, Any]]:
    """Every combination of ``params`` (a value or an iterable of values each) passing
    ``constraint``, in product order of the values as given."""
    if not params:
        raise ConfigError("params", "give at least one parameter to sweep, e.g. fast=range(5, 50)")
    names = list(params)
    values = []
    for name in names:
        v = params[name]
        seq = list(v) if isinstance(v, Iterable) and not isinstance(v, str | bytes) else [v]
        if not seq:
            raise ConfigError(name, "no values to sweep")
        values.append(seq)
    combos = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
    if constraint is not None:
        combos = [c for c in combos if constraint(dict(c))]
    if not combos:
        raise ConfigError("constraint", "no combination of the grid passes the constraint")
    return combos


def check_objective(maximize: Objective) -> None:
    """Refuse an unknown statistic before any run (a callable is checked when called)."""
    from backstop.engine.stats import STAT_LABELS

    known = sorted(k for k in STAT_LABELS if k not in _NOT_COLUMNS)
    if not callable(maximize) and maximize not in known:
        raise ConfigError("maximize", f"unknown statistic {maximize!r} (known: {known})")


def check_backend(backend: str, address: str | None) -> None:
    """Refuse an unknown backend, an address without Ray, and Ray when it is not installed."""
    if backend not in BACKENDS:
        raise ConfigError("backend", f"unknown backend {backend!r} (known: {list(BACKENDS)})")
    if address is not None and backend != "ray":
        raise ConfigError("address", "applies to backend='ray' only")
    if backend == "ray":
        from backstop.runners.ray_pool import import_ray

        import_ray()


def score_of(stats: dict[str, Any], maximize: Objective) -> float:
    """The number ``maximize`` picks from a run's stats (NaN ranks below every number)."""
    if callable(maximize):
        return float(maximize(stats))
    if maximize not in stats or maximize in _NOT_COLUMNS:
        known = sorted(k for k in stats if k not in _NOT_COLUMNS)
        raise ConfigError("maximize", f"unknown statistic {maximize!r} (known: {known})")
    return float(stats[maximize])


def best_index(scores: list[float]) -> int:
    """The first highest score, NaN counting as lowest (ties go to the earlier row)."""
    ranked = [(-math.inf if math.isnan(s) else s) for s in scores]
    return max(range(len(ranked)), key=lambda i: (ranked[i], -i))


def sweep(
    bt: Backtest,
    *,
    constraint: Constraint | None = None,
    processes: int | None = None,
    progress: bool | None = None,
    backend: str = "processes",
    address: str | None = None,
    **params: Any,
) -> pl.DataFrame:
    """Run every combination and return one row per run: the parameters, ``run_id`` and
    every numeric statistic, in grid order. ``backend``: ``"processes"`` (worker processes
    on this machine) or ``"ray"`` (Ray actors; ``address`` names the cluster, None: this
    process's Ray instance, else a local one started for the sweep)."""
    check_backend(backend, address)
    combos = grid(params, constraint)
    for combo in combos:
        bt.strategy.resolve(bt.params | combo)  # refuse a bad value before any work
    rows = _run_all(bt, combos, processes, progress, backend, address)
    return _table(combos, rows)


def optimize(
    bt: Backtest,
    *,
    maximize: Objective = "sharpe",
    constraint: Constraint | None = None,
    processes: int | None = None,
    progress: bool | None = None,
    backend: str = "processes",
    address: str | None = None,
    **params: Any,
) -> tuple[BacktestResult, pl.DataFrame]:
    """Sweep, then run the best combination again: (its full result, the sweep table)."""
    check_objective(maximize)
    table = sweep(
        bt,
        constraint=constraint,
        processes=processes,
        progress=progress,
        backend=backend,
        address=address,
        **params,
    )
    names = list(params)
    best = best_row(table, names, maximize)
    chosen = {k: best[k] for k in names}
    return backtest_for(job_of(bt), bt.prepared, chosen).run(), table


def best_row(table: pl.DataFrame, names: list[str], maximize: Objective) -> dict[str, Any]:
    """The sweep row with the highest score (the first of equals), as a dict."""
    return table.row(best_index(_scores(table, names, maximize)), named=True)


def _scores(table: pl.DataFrame, names: list[str], maximize: Objective) -> list[float]:
    """Each row's score; a callable gets the row's stats (parameters included)."""
    if callable(maximize):
        return [score_of(row, maximize) for row in table.iter_rows(named=True)]
    numeric = [c for c, t in table.schema.items() if t.is_numeric() and c not in names]
    if maximize not in numeric:
        raise ConfigError("maximize", f"unknown statistic {maximize!r} (known: {sorted(numeric)})")
    return [math.nan if v is None else float(v) for v in table.get_column(maximize)]


def _table(combos: list[dict[str, Any]], rows: list[dict[str, Any]]) -> pl.DataFrame:
    records = []
    for combo, stats in zip(combos, rows, strict=True):
        flat = {k: v for k, v in stats.items() if k not in _NOT_COLUMNS}
        records.append(combo | flat)
    return pl.DataFrame(records, infer_schema_length=None)


# ---- running the combinations ----------------------------------------------------------


def job_of(bt: Backtest) -> dict[str, Any]:
    """What a run needs besides the bars and the combination."""
    return {
        "strategy": bt.strategy,
        "config": bt.config,
        "instruments": bt.instruments,
        "profile": bt.profile,
        "params": dict(bt.params),
        "tz": bt.tz,
    }


def backtest_for(job: dict[str, Any], prepared: Any, combo: dict[str, Any]) -> Backtest:
    """The job's backtest over ``prepared`` with ``combo`` laid over its parameters.

    Only the combination's values are parsed again: the others keep the very values (and
    types) the original backtest holds, so a sweep's run has the run id of the same run made
    directly with ``Backtest(...)``.
    """
    from backstop.runners.backtest import Backtest

    bt = Backtest(
        prepared,
        job["strategy"],
        config=job["config"],
        instruments=job["instruments"],
        profile=job["profile"],
    )
    parsed = bt.strategy.resolve(job["params"] | combo)
    bt.params = job["params"] | {k: parsed[k] for k in combo}
    bt.tz = job.get("tz")  # prepared bars take no tz: the zone its result shows times in
    return bt


def run_one(job: dict[str, Any], combo: dict[str, Any]) -> dict[str, Any]:
    """One combination's stats (with its run id); ``job["prepared"]`` holds the bars.

    The buy & hold return depends on the bars alone, and every combination runs over the
    same bars: it is computed by the first run and handed to the others (a third of a
    combination's time on 1M bars), never recomputed per combination.
    """
    result = backtest_for(job, job["prepared"], combo).run()
    if result.bars is job["prepared"].bars:
        if "buy_hold_return" in job:
            result.__dict__["buy_hold_return"] = job["buy_hold_return"]  # the cached property
        else:
            job["buy_hold_return"] = result.buy_hold_return
    return {"run_id": result.run_id} | result.stats


def _processes(processes: int | None, n: int) -> int:
    if processes is None:
        processes = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        processes = processes or os.cpu_count() or 1
    if processes < 1:
        raise ConfigError("processes", f"must be at least 1, got {processes}")
    return min(processes, n)


def _check_sendable(bt: Backtest) -> None:
    fn = getattr(bt.strategy, "fn", None)
    where = getattr(fn, "__module__", "")
    try:
        pickle.dumps(bt.strategy)
        sendable = where != "__main__"
    except (pickle.PicklingError, AttributeError, TypeError):
        sendable = False
    if not sendable:
        raise ConfigError(
            "processes",
            f"strategy {bt.strategy.name!r} is defined in __main__ (a notebook or script) or "
            "cannot be pickled, so worker processes cannot load it; pass processes=1, or "
            "define it in an importable module",
        )


def _run_all(
    bt: Backtest,
    combos: list[dict[str, Any]],
    processes: int | None,
    progress: bool | None,
    backend: str = "processes",
    address: str | None = None,
) -> list[dict[str, Any]]:
    show = sys.stderr.isatty() if progress is None else progress
    if backend == "ray":
        from backstop.runners.ray_pool import run_ray

        with _progress(len(combos), show) as tick:
            return run_ray(job_of(bt), bt.prepared.bars, combos, processes, tick, address)
    n_proc = _processes(processes, len(combos))
    with _progress(len(combos), show) as tick:
        if n_proc == 1:
            job = job_of(bt) | {"prepared": bt.prepared}
            out = []
            for combo in combos:
                out.append(run_one(job, combo))
                tick()
            return out
        _check_sendable(bt)
        from backstop.runners.pool import run_pool

        local = job_of(bt) | {"prepared": bt.prepared}
        return run_pool(job_of(bt), bt.prepared.bars, combos, n_proc, tick, local=local)


class _progress:
    """A rich progress bar on stderr when shown, else nothing; ``tick()`` per finished run."""

    def __init__(self, total: int, show: bool) -> None:
        self.total = total
        self.show = show
        self.bar: Any = None

    def __enter__(self) -> Callable[[], None]:
        if not self.show:
            return lambda: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.bar = Progress(
            "sweep",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.bar.__enter__()
        task = self.bar.add_task("runs", total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
