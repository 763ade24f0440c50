"""Benchmark backstop on the shared WORKLOAD (../shared/bench/WORKLOAD.md): S, M and W.

    python bench/bench_backstop.py [--sizes S,M,W] [--repeat 5]

Generates the WORKLOAD parquet files under bench/data/ when missing (seeded, deterministic),
then, for each size, runs a fresh child process that loads the bars, prepares them, and times
the SMA-cross bracket backtest (strategy + compiled pipeline + record arrays, every decision
journaled in memory) with the data already in memory. Prints one JSON object per size:
bars/s (best of ``--repeat``), round trips, P&L, first-run overhead with the numba cache warm,
peak memory, and the DuckDB journal write time. The cold compile time (empty numba cache) is
measured once, in its own process, and printed as a separate JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"


def ensure_data(size: str) -> Path:
    """The WORKLOAD file for ``size``, generated on first use."""
    from backstop.data import write_workload

    path = DATA / f"workload_{size}.parquet"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        write_workload(path, size)
    return path


def _proc_status_bytes(key: str) -> int:
    """VmHWM (peak) or VmRSS of this process; unlike ru_maxrss, not inherited across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def child(path: Path, repeat: int) -> dict[str, object]:
    """Run inside a fresh process: time one size."""
    from backstop.data import load_bars
    from backstop.engine.journal import write_journal
    from backstop.engine.prepare import PreparedBars
    from backstop.runners.backtest import Backtest

    rss0 = _proc_status_bytes("VmRSS")  # interpreter + libraries, before any bars
    t = time.perf_counter()
    bars = load_bars(path)  # read + validate + engine order: what a user's run starts from
    load_s = time.perf_counter() - t
    raw_bytes = bars.height * 8 * 7  # ts, 5 floats and a symbol code: 8 bytes each per bar
    t = time.perf_counter()
    prepared = PreparedBars.of(bars)
    prepare_s = time.perf_counter() - t
    t = time.perf_counter()
    first = Backtest(prepared, "sma_cross").run()
    first_s = time.perf_counter() - t
    times = []
    result = first
    del first
    for _ in range(repeat):
        # one run's peak: the previous result is dropped before the next run starts
        result = None
        t = time.perf_counter()
        result = Backtest(prepared, "sma_cross").run()
        times.append(time.perf_counter() - t)
    best = min(times)
    peak_run = _proc_status_bytes("VmHWM")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_journal(result, Path(tmp) / "journal.duckdb")
        journal_s = time.perf_counter() - t
    peak = _proc_status_bytes("VmHWM")
    return {
        "engine": "backstop",
        "data": path.name,
        "bars": bars.height,
        "symbols": bars.get_column("symbol").n_unique(),
        "round_trips": result.round_trips,
        "pnl": round(result.pnl, 6),
        "signals": len(result.records.verdicts),
        "run_seconds": round(best, 6),
        "run_seconds_median": round(sorted(times)[len(times) // 2], 6),
        "bars_per_second": round(bars.height / best),
        "first_run_seconds": round(first_s, 6),
        "first_run_overhead_seconds": round(first_s - best, 6),
        "load_validate_seconds": round(load_s, 6),
        "prepare_seconds": round(prepare_s, 6),
        "journal_write_seconds": round(journal_s, 6),
        "raw_bar_bytes": raw_bytes,
        "peak_rss_bytes": peak,
        "baseline_rss_bytes": rss0,
        "peak_over_raw": round((peak - rss0) / raw_bytes, 3),
        "peak_rss_before_journal_bytes": peak_run,
        "peak_before_journal_over_raw": round((peak_run - rss0) / raw_bytes, 3),
    }


def cold_compile() -> dict[str, object]:
    """Time to the first result in a fresh process, with an empty numba cache and a warm one.

    Measured twice: with the kernel core the install compiled ahead of time (what a user's
    first run costs; ``backstop.engine.core.ahead``), and with it switched off, every kernel
    compiled just in time (what the first run costs after editing a kernel, until the core
    is rebuilt). Each figure includes the imports, a 2,000-bar backtest and its equity curve.
    """
    code = (
        "import time; t=time.perf_counter();"
        "from backstop.data import gbm_bars; from backstop.runners.backtest import Backtest;"
        "r=Backtest(gbm_bars(2000,1),'sma_cross').run(); r.equity;"
        "print(time.perf_counter()-t);"
        "from backstop.engine.core import ahead; print(ahead.status())"
    )
    out: dict[str, object] = {}
    for prefix, switch in (("", "1"), ("jit_", "0")):
        with tempfile.TemporaryDirectory() as cache:
            for label in ("cold_cache", "warm_cache"):
                env = dict(os.environ, NUMBA_CACHE_DIR=cache, BACKSTOP_AOT=switch)
                p = subprocess.run(
                    [sys.executable, "-c", code],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                seconds, status = p.stdout.strip().splitlines()[-2:]
                out[f"{prefix}{label}_seconds"] = round(float(seconds), 3)
                if not prefix:
                    out["ahead_of_time"] = status
    return {"engine": "backstop", "measure": "compile", **out}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="S,M,W")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--no-compile", action="store_true", help="skip the cold compile run")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(Path(args.child), args.repeat)))
        return 0
    if not args.no_compile:
        print(json.dumps(cold_compile()), flush=True)
    for size in args.sizes.split(","):
        path = ensure_data(size.strip())
        p = subprocess.run(
            [sys.executable, __file__, "--child", str(path), "--repeat", str(args.repeat)],
            capture_output=True,
            text=True,
            check=True,
        )
        print(p.stdout.strip().splitlines()[-1], flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
