"""Build the ahead-of-time core (``backstop.engine.core.ahead``): ``python -m`` this module.

The install runs it (setup.py), and a developer reruns it after changing a kernel (until
then the kernels are compiled just in time). It runs the example backtests and replays in a
child process with an empty numba cache and the extension switched off, so every kernel is
compiled from the sources on disk, and the types they record are the ones real runs pass.
Exit status 0 on success; on failure it says why on stderr and in ``_ahead.failed`` (which
``ahead.status()`` reports), and the engine compiles just in time as before.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from backstop.engine.core.ahead import ENV_SWITCH, FAILED, MANIFEST, MODULE

_ROOT = Path(__file__).resolve().parents[2]


def _example_runs() -> None:
    """Small runs that call every kernel Python calls, with the types real runs pass."""
    import polars as pl

    from backstop.brokers.sim.backtest import run_backtest
    from backstop.data import gbm_bars, sample_bars
    from backstop.engine.config import BacktestConfig
    from backstop.runners.backtest import Backtest
    from backstop.runners.stepwise import run_event_driven
    from backstop.strategies import get_strategy

    params = {"fast": 5, "slow": 20, "stop_pct": 0.01, "target_pct": 0.02, "qty": 10}
    # prices on a cent grid take the SMA kernels' exact integer path (strategies/ticks.py)
    cents = [pl.col(c).round(2) for c in ("open", "high", "low", "close")]
    on_grid = (gbm_bars(500, 1).with_columns(cents), gbm_bars(200, 8).with_columns(cents))
    # 50 symbols: a bar's guard-event room (16 + 2 per strategy + 1 per symbol) outgrows the
    # first buffer, as in every run of 48 symbols or more (W), so the kernel that swaps in a
    # grown buffer is built too: left out, it loaded from numba's cache in each such run,
    # starting numba's compiler for it (0.3-0.9 s of the W command)
    wide = gbm_bars(120, 50)
    # bars in several chunks a column, as a Parquet file with several row groups reads: the
    # validation copies them into the engine's arrays (backstop.data.scan), where bars in one
    # chunk are checked in place
    two = gbm_bars(400, 2)
    chunked = pl.concat([two.head(300), two.tail(500)], rechunk=False)
    for bars in (gbm_bars(3000, 1), gbm_bars(400, 8), sample_bars(), *on_grid, wide, chunked):
        result = Backtest(bars, "sma_cross", **params).run()
        _ = result.equity, result.trades, result.stats
    bars = gbm_bars(600, 2)
    intents = get_strategy("sma_cross").intents(bars, params)
    day_orders = intents.with_columns(pl.lit(0).alias("tif"))
    for config in (BacktestConfig(), BacktestConfig(max_participation=0.1)):
        _ = run_backtest(bars, day_orders, config).equity
        _ = run_event_driven(bars, intents, config).equity
    replays = _ROOT / "replays"
    if replays.is_dir():
        from backstop.runners.replay import replay

        for incident in sorted(p for p in replays.iterdir() if p.is_dir()):
            replay(incident)


def _host_features_codegen(features: str) -> None:
    """numba's AOT codegen picks ISA features from the CPU name alone; a VM may mask some of
    them, so build for exactly the features this machine reports (what the JIT does)."""
    from numba.core.codegen import AOTCPUCodegen

    AOTCPUCodegen._customize_tm_features = lambda self: features  # type: ignore[method-assign]


def _compile(out_dir: Path) -> dict[str, Any]:
    """Child process: run the examples, then compile what they recorded into ``out_dir``."""
    t0 = time.perf_counter()
    import numba
    from numba.core import typing
    from numba.pycc import CC

    from backstop.engine.core import _sources_digest, ahead

    _example_runs()
    cpu, features = ahead.host_cpu()
    _host_features_codegen(features)
    cc = CC(MODULE)
    cc.output_dir = str(out_dir)
    cc.target_cpu = cpu
    entries: dict[str, list[tuple[str, bytes]]] = {}
    n = 0
    for key in sorted(ahead.KERNELS):
        dispatcher = ahead.KERNELS[key]
        for argtypes, cres in sorted(dispatcher.overloads.items(), key=lambda kv: str(kv[0])):
            symbol = f"k{n}"
            n += 1
            sig = typing.signature(cres.signature.return_type, *argtypes)
            cc.export(symbol, sig)(dispatcher.py_func)
            entries.setdefault(key, []).append((symbol, pickle.dumps(tuple(argtypes))))
    cc.compile()
    return {
        "digest": _sources_digest(),
        "cpu": (cpu, features),
        "numba": numba.__version__,
        "python": sys.version_info[:2],
        "entries": entries,
        "build_seconds": time.perf_counter() - t0,
    }


def build(target: Path = MANIFEST.parent) -> bool:
    """Build the extension and its manifest into ``target``; True on success.

    The old build is removed first, so a failed build leaves no stale extension behind."""
    target.mkdir(parents=True, exist_ok=True)
    for old in (*target.glob(f"{MODULE}.*.so"), *target.glob(f"{MODULE}.*.pyd")):
        old.unlink()
    for old in (target / MANIFEST.name, target / FAILED.name):
        old.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / "numba-cache"))
        env[ENV_SWITCH] = "0"
        proc = subprocess.run(  # from _ROOT: ``-m`` imports this checkout's backstop
            [sys.executable, "-m", __spec__.name, "--child", str(out)],
            cwd=_ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        built = sorted(out.glob(f"{MODULE}.*"))
        if proc.returncode != 0 or not (out / MANIFEST.name).exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            why = f"the build failed (exit {proc.returncode}): {tail[0]}"
            (target / FAILED.name).write_text(why + "\n")
            print(f"backstop: {why}\n{proc.stderr}", file=sys.stderr)
            return False
        # the extension first, the manifest last: a manifest always names a complete build
        for path in sorted(built, key=lambda p: p.name == MANIFEST.name):
            shutil.copy2(path, target / path.name)
    manifest = pickle.loads((target / MANIFEST.name).read_bytes())
    n = sum(map(len, manifest["entries"].values()))
    print(
        f"backstop: ahead-of-time core built: {n} kernel signatures in "
        f"{manifest['build_seconds']:.1f} s"
    )
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--target", type=Path, default=MANIFEST.parent)
    args = parser.parse_args(argv)
    if args.child:
        out = Path(args.child)
        (out / MANIFEST.name).write_bytes(pickle.dumps(_compile(out)))
        return 0
    return 0 if build(args.target) else 1


if __name__ == "__main__":
    sys.exit(main())
