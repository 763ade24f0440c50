"""Run sweep combinations on a Ray cluster: ``backend="ray"`` (the optional ``backstop[ray]``).

The bars go into Ray's object store once (``ray.put`` of their Arrow table); each actor (one
CPU each, as many as the cluster has CPUs or ``processes`` says) reads them once and prepares
them, as a process worker does; only the small combinations travel per task. Each actor gets
its next combination when it finishes one; replies are put back in grid order, so the table
equals the process pool's row for row.

Where Ray runs: ``address=None`` joins the Ray instance this process already has, else starts
a local one (and shuts it down after the sweep); ``address="HOST:PORT"`` (or ``"auto"``)
joins that cluster, whose nodes need backstop installed (the same version) to import the
strategy. Ray's workers on this machine start in the caller's working directory.
"""

from __future__ import annotations

import socket
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from backstop.errors import BackstopError, ConfigError

Tick = Callable[[], None]
INSTALL_HINT = "pip install 'backstop[ray]' (or pip install ray)"


def import_ray(key: str = "backend") -> Any:
    """The ``ray`` module, or a ``ConfigError`` naming ``key`` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(key, f"ray is not installed; {INSTALL_HINT}") from None
    return ray


class SweepActor:
    """One Ray actor: the job and its prepared bars, held for every combination it runs."""

    def __init__(self, job: dict[str, Any], bars: Any) -> None:
        import polars as pl

        from backstop.engine.prepare import PreparedBars

        self.job = dict(job)
        self.job["prepared"] = PreparedBars.of(pl.from_arrow(bars))

    def run(self, index: int, combo: dict[str, Any]) -> tuple[str, int, Any]:
        """("ok", index, stats), ("error", index, message) or ("bug", index, traceback)."""
        from backstop.runners.sweep import run_one

        try:
            return ("ok", index, run_one(self.job, combo))
        except BackstopError as exc:
            return ("error", index, str(exc))
        except Exception:
            return ("bug", index, traceback.format_exc())


def run_ray(
    job: dict[str, Any],
    bars: Any,
    combos: list[dict[str, Any]],
    processes: int | None,
    tick: Tick,
    address: str | None = None,
) -> list[dict[str, Any]]:
    """Each combination's stats, in the order of ``combos``."""
    with ray_session(address) as ray:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        if processes is not None and processes < 1:
            raise ConfigError("processes", f"must be at least 1, got {processes}")
        n = max(1, min(processes or cpus, len(combos)))
        bars_ref = ray.put(bars.to_arrow())  # once, into the object store
        actor = ray.remote(num_cpus=1)(SweepActor)
        actors = [actor.remote(job, bars_ref) for _ in range(n)]
        return _drive(ray, actors, combos, tick)


@contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """The ``ray`` module, joined to a Ray instance for the ``with`` block.

    The instance this process has already is used as it is; else ``address`` is joined (a
    ``HOST:PORT`` nothing answers at is refused first, in seconds), or, with ``None``, a local
    Ray is started and shut down when the block ends. Several sweeps in one block (the folds
    of a walk-forward) share the one local Ray instead of starting one each."""
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        check_reachable(address)
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        started = address is None
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def check_reachable(address: str | None, key: str = "address", timeout_s: float = 3.0) -> None:
    """Refuse a ``HOST:PORT`` nothing listens on, in seconds: Ray itself would wait minutes
    for it. ``None`` and ``"auto"`` (and ``ray://`` addresses) are left to Ray. Errors name
    ``key``."""
    if address is None or address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(key, f"expected HOST:PORT (or auto), got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            key,
            f"no Ray cluster answers at {address} ({reason}); start one with "
            "`ray start --head`, or leave the address out for a local Ray",
        ) from None


def _drive(ray: Any, actors: list[Any], combos: list[dict[str, Any]], tick: Tick) -> list[Any]:
    """Keep each actor busy with one combination until all are done."""
    results: list[Any] = [None] * len(combos)
    todo = iter(enumerate(combos))
    pending: dict[Any, Any] = {}
    for a in actors:
        task = next(todo, None)
        if task is not None:
            pending[a.run.remote(*task)] = a
    try:
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            a = pending.pop(ref)
            kind, index, payload = ray.get(ref)
            if kind == "error":
                raise BackstopError(f"{combos[index]}: {payload}")
            if kind == "bug":
                raise RuntimeError(f"sweep actor failed on {combos[index]}:\n{payload}")
            results[index] = payload
            tick()
            task = next(todo, None)
            if task is not None:
                pending[a.run.remote(*task)] = a
    finally:
        for a in actors:
            ray.kill(a)
    return results
