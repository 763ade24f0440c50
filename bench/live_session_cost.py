"""Live session cost: what one bar costs the live runner early and late in a session.

A runner (``LiveRunner`` over ``LiveSession``) against the port fake (``tests/
fake_port_broker.py``, matched bar time by bar time by ``tests/live_kit.SimWorld``) trades
sma_cross over the bundled sample's first ``--stamps`` bar times (3 symbols). Every step is
timed, and apart from it the parts that grow with the session: the session's own work at a
bar (``on_bars``), the runner's state save in steps that changed something (its
``CheckpointStore``), the same state written whole (``save_checkpoint``, what every save
cost before the store) and the broker re-read of a reconcile (``open_orders`` +
``recent_fills`` from ``fills_since()``). The report is the
median per step over a window of steps around each of ``--at`` (default 200 and 2,000), so a
linear session shows the same figure at both, a quadratic one a growing one.

The journal rewrite (at most once a second while running) is left out
(``journal_every_s`` is set past the run): it is a whole rewrite by design, bounded in rate.

With ``--alpaca`` it times instead the REST re-read the Alpaca path does after every bar
(``measure_alpaca``), as it is and as it was.

    python bench/live_session_cost.py [--stamps 2100] [--at 200 2000] [--window 40] [--alpaca]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import polars as pl  # noqa: E402
from fake_port_broker import PortFakeBroker  # noqa: E402
from live_kit import SimWorld  # noqa: E402

import backstop  # noqa: E402
from backstop.engine.brackets import Venue  # noqa: E402
from backstop.engine.checkpoint import save_checkpoint  # noqa: E402
from backstop.engine.config import BacktestConfig  # noqa: E402
from backstop.engine.profile import RiskProfile  # noqa: E402
from backstop.runners.live.runner import LiveRunner, Mode  # noqa: E402
from backstop.runners.live.session import LiveSession, LiveSetup  # noqa: E402
from backstop.strategies import get_strategy  # noqa: E402


def measure(stamps: int, at: list[int], window: int) -> dict[int, dict[str, float]]:
    bars = backstop.sample_bars()
    first = bars.get_column("ts").unique().sort().head(stamps)
    bars = bars.filter(pl.col("ts").is_in(first.implode())).sort("ts", "symbol")
    symbols = tuple(sorted(bars["symbol"].unique().to_list()))
    broker = PortFakeBroker(list(symbols), reduce_only=False, ticks=dict.fromkeys(symbols, 0.01))
    world = SimWorld(bars, broker)
    setup = LiveSetup(
        get_strategy("sma_cross"), {"fast": 5, "slow": 20}, symbols, RiskProfile(), "bench",
        config=BacktestConfig(legs_live_on_entry_bar=False), venue=Venue(reduce_only=False),
    )  # fmt: skip
    session = LiveSession(setup, broker, 100_000.0)
    marks = {k: (k - window // 2, k + window // 2) for k in at}
    parts: dict[int, dict[str, list[float]]] = {
        k: {"step": [], "on_bars": [], "state save": [], "whole save": [], "broker re-read": []}
        for k in at
    }
    with tempfile.TemporaryDirectory() as tmp:
        runner = LiveRunner(session, broker, world, tmp, mode=Mode.PAPER, journal_every_s=1e9)
        runner.start()
        decide, store = session.on_bars, runner.store.save
        spent: list[float] = []
        saved: list[float] = []

        def on_bars(new: pl.DataFrame) -> int:
            t = time.perf_counter()
            try:
                return decide(new)
            finally:
                spent.append(time.perf_counter() - t)

        def save(cp):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return store(cp)
            finally:
                saved.append(time.perf_counter() - t)

        session.on_bars = on_bars  # type: ignore[method-assign]
        runner.store.save = save  # type: ignore[method-assign]
        while True:
            last = session.last_ts()
            new = world.next_bars(last)
            if new is None:
                break
            n = runner.steps + 1
            inside = [k for k, (lo, hi) in marks.items() if lo <= n < hi]
            saves = len(saved)
            t0 = time.perf_counter()
            runner.step(new)
            step = time.perf_counter() - t0
            for k in inside:
                t1 = time.perf_counter()
                save_checkpoint(Path(tmp) / "whole.ckpt", session.checkpoint())
                t2 = time.perf_counter()
                broker.open_orders()
                broker.recent_fills(runner.fills_since())
                t3 = time.perf_counter()
                got = parts[k]
                got["step"].append(step)
                got["on_bars"].append(spent[-1])
                if len(saved) > saves:  # the step changed something: the runner saved
                    got["state save"].append(saved[-1])
                got["whole save"].append(t2 - t1)
                got["broker re-read"].append(t3 - t2)
    out = {}
    for k, got in parts.items():
        out[k] = {name: 1e3 * statistics.median(v) for name, v in got.items() if v}
    return out


def measure_alpaca(stamps: int, at: list[int], window: int) -> dict[int, dict[str, float]]:
    """The REST re-read a runner does after every bar on the Alpaca path (``backstop paper
    --broker alpaca-fake``: the real alpaca-py client against the loopback fake), timed at
    the marks as it is now (what changed since the last re-sync) and as it was (open orders
    plus every order and fill of the look-back window, a trading day)."""
    from backstop.runners.live.paper import PaperOptions, run_paper

    marks = {k: (k - window // 2, k + window // 2) for k in at}
    parts: dict[int, dict[str, list[float]]] = {
        k: {"re-read since last": [], "re-read look-back": []} for k in at
    }

    def hook(runner: LiveRunner) -> None:
        broker = runner.broker
        for k, (lo, hi) in marks.items():
            if lo <= runner.steps < hi:
                t0 = time.perf_counter()
                broker.refresh()  # type: ignore[attr-defined]
                t1 = time.perf_counter()
                broker._synced_ns = None  # type: ignore[attr-defined]  # as before: the day
                broker.refresh()  # type: ignore[attr-defined]
                t2 = time.perf_counter()
                parts[k]["re-read since last"].append(t1 - t0)
                parts[k]["re-read look-back"].append(t2 - t1)

    with tempfile.TemporaryDirectory() as tmp:
        run_paper(
            PaperOptions("alpaca-fake", "sma_cross", {"fast": 5, "slow": 20}, None, None,
                         Mode.PAPER, Path(tmp) / "run", bars=stamps, on_step=hook)
        )  # fmt: skip
    return {
        k: {name: 1e3 * statistics.median(v) for name, v in got.items() if v}
        for k, got in parts.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stamps", type=int, default=2100)
    ap.add_argument("--at", type=int, nargs="+", default=[200, 2000])
    ap.add_argument("--window", type=int, default=40)
    ap.add_argument("--alpaca", action="store_true", help="time the Alpaca path's re-read")
    args = ap.parse_args()
    run = measure_alpaca if args.alpaca else measure
    result = run(args.stamps, args.at, args.window)
    names = list(next(iter(result.values())))
    print(f"{'bar times':>10} " + " ".join(f"{n + ' ms':>18}" for n in names))
    for k, row in result.items():
        print(f"{k:>10} " + " ".join(f"{row[n]:>18.2f}" for n in names))


if __name__ == "__main__":
    main()
