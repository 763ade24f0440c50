"""Run the "SMA cross bracket" workload on peer backtest libraries and print one JSON line each.

Usage (from the repository root, after ``bash bench/setup_peers.sh``)::

    bench/.peers-venv/bin/python bench/peers.py --data FILE.parquet \\
        [--engines vectorbt_nb,vectorbt_rs,backtesting,backtrader,nautilus] [--max-bars N]
    bench/.peers-venv/bin/python bench/peers.py --synthetic 20000 [--symbols 1] [--seed 7]

Each engine runs in its own child process (so first-run JIT/compile cost is its own, and
nautilus_trader can use its own virtual environment): the child loads the data, builds the
library's input (not timed), runs the backtest twice and reports the first run's wall time
as ``first_run_seconds`` and the second's as ``run_seconds``. This process also runs a
plain reference simulation of the workload on the same bars and adds to each engine's notes
whether its round trips and P&L agree with it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from peer_engines import ENGINES, make_peer
from peer_engines.common import (
    SIGMA,
    EngineResult,
    SymbolBars,
    load_parquet,
    rate,
    save_parquet,
    synthetic,
    timed,
    truncate,
)

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE / ".peers-venv" / "bin" / "python"
NAUTILUS_PYTHON = HERE / ".peers-venv-nautilus" / "bin" / "python"
PNL_TOLERANCE = 1e-6  # dollars per round trip: float summation order only


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="workload parquet (ts, symbol, OHLC, volume)")
    src.add_argument("--synthetic", type=int, metavar="N", help="generate N GBM bars per symbol")
    p.add_argument("--symbols", type=int, default=1, help="symbols for --synthetic (default 1)")
    p.add_argument("--seed", type=int, default=7, help="seed for --synthetic (default 7)")
    p.add_argument(
        "--sigma",
        type=float,
        default=SIGMA,
        help=f"per-bar sigma for --synthetic (workload: {SIGMA}); larger values only to "
        "exercise stops and gaps when checking the adapters",
    )
    p.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help=f"comma-separated subset of {','.join(ENGINES)} (default: all)",
    )
    p.add_argument("--max-bars", type=int, metavar="N", help="use the first N bars per symbol")
    p.add_argument("--save", type=Path, metavar="FILE", help="write the bars used to parquet")
    p.add_argument("--no-check", action="store_true", help="skip the reference simulation")
    p.add_argument("--worker", metavar="ENGINE", help=argparse.SUPPRESS)
    return p


def _load(args: argparse.Namespace) -> tuple[list[SymbolBars], int]:
    """The bars to run (after --max-bars) and the full per-symbol length before it."""
    if args.data is not None:
        data = load_parquet(args.data)
    else:
        data = synthetic(args.synthetic, args.symbols, args.seed, args.sigma)
    full = max(len(s) for s in data)
    return truncate(data, args.max_bars), full


def _source_args(args: argparse.Namespace) -> list[str]:
    """The command-line arguments that make a child load the same bars."""
    if args.data is not None:
        out = ["--data", str(args.data.resolve())]
    else:
        out = ["--synthetic", str(args.synthetic), "--symbols", str(args.symbols)]
        out += ["--seed", str(args.seed), "--sigma", repr(args.sigma)]
    if args.max_bars is not None:
        out += ["--max-bars", str(args.max_bars)]
    return out


def run_worker(
    engine: str, data: Sequence[SymbolBars], full_len: int, max_bars: int | None
) -> EngineResult:
    """Prepare, run twice, and describe one engine (inside its own process)."""
    peer = make_peer(engine)
    t0 = time.perf_counter()
    prepared = peer.prepare(data)
    prepare_s = time.perf_counter() - t0
    first_s, trips, pnl = timed(lambda: peer.run(prepared))
    run_s, trips2, pnl2 = timed(lambda: peer.run(prepared))
    bars = sum(len(s) for s in data)
    notes = list(peer.notes())
    notes.append(f"prepare (untimed) {prepare_s:.3f}s.")
    if (trips2, pnl2) != (trips, pnl):
        notes.append(f"second run differed: {trips2} round trips, P&L {pnl2:.6f}.")
    if max_bars is not None and max_bars < full_len:
        notes.append(f"MEASURED ON THE FIRST {max_bars} BARS PER SYMBOL (of {full_len}).")
    return EngineResult(
        engine=engine,
        version=peer.version(),
        bars=bars,
        symbols=len(data),
        round_trips=trips,
        pnl=pnl,
        first_run_seconds=first_s,
        run_seconds=run_s,
        bars_per_second=rate(bars, run_s),
        notes=notes,
    )


def _python_for(engine: str) -> str:
    """The interpreter of the virtual environment that holds this engine's library."""
    if engine == "nautilus" and NAUTILUS_PYTHON.exists():
        return str(NAUTILUS_PYTHON)
    if engine != "nautilus" and PEERS_PYTHON.exists():
        return str(PEERS_PYTHON)
    return sys.executable


def _spawn(engine: str, args: argparse.Namespace) -> dict[str, object]:
    """Run one engine in a child process and return its JSON line as a dict."""
    cmd = [_python_for(engine), str(Path(__file__).resolve()), "--worker", engine]
    cmd += _source_args(args)
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {
        "engine": engine,
        "version": None,
        "bars": None,
        "symbols": None,
        "round_trips": None,
        "pnl": None,
        "first_run_seconds": None,
        "run_seconds": None,
        "bars_per_second": None,
        "notes": f"FAILED (exit {proc.returncode}): {err}",
    }


def _check_note(line: dict[str, object], name: str, trips: int, pnl: float) -> str:
    """Whether an engine's totals agree with one reference simulation."""
    got_trips, got_pnl = line.get("round_trips"), line.get("pnl")
    if not isinstance(got_trips, int) or not isinstance(got_pnl, float | int):
        return ""
    tol = PNL_TOLERANCE * max(trips, 1)
    if got_trips == trips and math.isclose(got_pnl, pnl, rel_tol=0.0, abs_tol=tol):
        verdict = "MATCHES"
    else:
        verdict = f"DIFFERS (round trips {got_trips - trips:+d}, P&L {got_pnl - pnl:+.6f})"
    return f"Check vs {name}: {trips} round trips, P&L {pnl:.6f} -> {verdict}."


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the requested engines (or be one engine's worker)."""
    args = _parser().parse_args(argv)
    data, full_len = _load(args)

    if args.worker:
        result = run_worker(args.worker, data, full_len, args.max_bars)
        print(json.dumps(result.as_json_dict()), flush=True)
        return 0

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        print(f"unknown engine(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    if args.save is not None:
        save_parquet(data, args.save)

    checks: list[tuple[str, int, float]] = []
    if not args.no_check:
        from peer_engines.reference import run_reference

        ref = run_reference(data)
        ref_close = run_reference(data, close_fill=True)
        checks = [
            ("reference (next-open fills)", ref.round_trips, ref.pnl),
            ("reference close-fill variant", ref_close.round_trips, ref_close.pnl),
        ]
        print(
            f"# reference: {ref.round_trips} round trips, P&L {ref.pnl:.6f}; {ref.summary()}",
            file=sys.stderr,
            flush=True,
        )

    for engine in engines:
        line = _spawn(engine, args)
        if checks:
            own = checks if engine == "nautilus" else checks[:1]
            extra = " ".join(n for n in (_check_note(line, *c) for c in own) if n)
            line["notes"] = f"{line['notes']} {extra}".strip()
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
