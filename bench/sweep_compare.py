"""A 100-combination SMA-cross grid on WORKLOAD M: backstop's sweep vs vectorbt's, one run.

    bash bench/setup_peers.sh                       # once: vectorbt lives in its own venv
    python bench/sweep_compare.py [--rounds 2] [--processes 2] [--out bench/RESULTS.md]

The grid is fast in 5, 10, ..., 50 by slow in 60, 80, ..., 240 (10 x 10, every pair valid).
backstop: ``Backtest(prepared M bars, "sma_cross").sweep(fast=..., slow=..., processes=2)``,
the whole pipeline (guardrails, journal records, every statistic) per combination on the
sweep's worker processes. vectorbt: every pair as a column of one ``from_signals`` call
(``peer_engines/vbt_sweep.py``), on its numba engine and on its rust engine. Each side runs in
its own child process; rounds alternate (backstop, vectorbt numba, vectorbt rust, backstop,
...) and each keeps its best round. Timed: the whole grid, bars already in memory (loading
them is not timed on either side); vectorbt's numba compile is reported apart, backstop's
worker start-up is inside its time.

Correctness: per combination, the closed round trips must be equal and the P&L of closed
trades within ``PNL_TOLERANCE`` dollars per round trip (float summation order only). The
rules and how each side expresses them are in ``bench/SWEEP.md`` and ``bench/PEERS.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS_PY = HERE / ".peers-venv" / "bin" / "python"
FAST = list(range(5, 55, 5))
SLOW = list(range(60, 260, 20))
PNL_TOLERANCE = 1e-6  # dollars per round trip
BEGIN = "<!-- sweep_compare.py: begin -->"
END = "<!-- sweep_compare.py: end -->"


def backstop_worker(data: Path, processes: int) -> dict[str, object]:
    """Inside a child process: load M (untimed), time one sweep over the grid."""
    import backstop
    from backstop.data import load_bars
    from backstop.engine.prepare import PreparedBars
    from backstop.runners.backtest import Backtest

    where = Path(backstop.__file__).resolve().parents[1]
    if where != ROOT:
        raise RuntimeError(f"measuring the backstop of {where}, not of this checkout {ROOT}")
    t = time.perf_counter()
    prepared = PreparedBars.of(load_bars(data))
    prepare_s = time.perf_counter() - t
    bt = Backtest(prepared, "sma_cross")
    t = time.perf_counter()
    table = bt.sweep(fast=FAST, slow=SLOW, processes=processes, progress=False)
    grid_s = time.perf_counter() - t
    trips = [int(x) for x in table.get_column("trade_count")]
    mean = table.get_column("expectancy").fill_nan(0.0).fill_null(0.0)
    pnl = [float(m) * n for m, n in zip(mean, trips, strict=True)]  # net P&L of closed trades
    return {
        "engine": "backstop",
        "version": _commit(),
        "bars": prepared.bars.height,
        "combos": table.height,
        "grid_seconds": grid_s,
        "prepare_seconds": prepare_s,
        "processes": processes,
        "fast": table.get_column("fast").to_list(),
        "slow": table.get_column("slow").to_list(),
        "round_trips": trips,
        "pnl": pnl,
    }


def _commit() -> str:
    """The checkout's commit (backstop has no release number that would tell versions apart)."""
    p = subprocess.run(
        ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return f"commit {p.stdout.strip()}" if p.returncode == 0 else "unknown commit"


def _child(cmd: list[str]) -> dict[str, object]:
    """Run one side in its own process; it imports THIS checkout's backstop (PYTHONPATH),
    never an installed copy from another checkout."""
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
        return {"engine": cmd[-1], "error": f"exit {p.returncode}: {tail}"}
    return json.loads(lines[-1])


def run_rounds(
    data: Path, rounds: int, processes: int, engines: list[str], single: bool = False
) -> dict:
    """Alternate backstop and each vectorbt engine ``rounds`` times; keep every round.
    ``single`` adds a backstop sweep on one process to each round (per-core comparison)."""
    me = str(Path(__file__).resolve())
    runs: dict[str, list[dict]] = {"backstop": []}
    for _ in range(rounds):
        mine = [("backstop", processes)] + ([("backstop_1", 1)] if single else [])
        for name, n in mine:
            cmd = [sys.executable, me, "--data", str(data), "--processes", str(n)]
            runs.setdefault(name, []).append(_child([*cmd, "--worker", "backstop"]))
            print(json.dumps(_brief(runs[name][-1])), flush=True)
        for engine in engines:
            row = _child([str(PEERS_PY), me, "--data", str(data), "--worker", engine])
            runs.setdefault(row.get("engine", engine), []).append(row)
            print(json.dumps(_brief(row)), flush=True)
    return runs


def _brief(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("round_trips", "pnl", "fast", "slow")}


def agree(a: dict, b: dict) -> tuple[int, list[str]]:
    """How many combinations have the same round trips and P&L in ``a`` and ``b``, and a
    line for each one that does not (``b`` minus ``a``)."""
    same = 0
    diffs = []
    rows = zip(a["fast"], a["slow"], a["round_trips"], a["pnl"], strict=True)
    for k, (f, s, n, p) in enumerate(rows):
        m, q = b["round_trips"][k], b["pnl"][k]
        if m == n and math.isclose(p, q, rel_tol=0.0, abs_tol=PNL_TOLERANCE * max(n, 1)):
            same += 1
        else:
            diffs.append(f"({f}, {s}): round trips {m - n:+d}, P&L {q - p:+.6f}")
    return same, diffs


def references(data: Path) -> dict[str, dict]:
    """The plain reference loop (``peer_engines/reference.py``) on every combination, with
    the project's conventions and with vectorbt's two (legs from the bar after the entry
    bar; a leg touched on a signal-exit bar exits at its level), plus its counts of the bars
    where the two conventions can differ."""
    from peer_engines.common import load_parquet
    from peer_engines.reference import D_ENTRY_BAR_LEG, D_EXIT_AND_LEG, run_reference

    bars = load_parquet(data)
    out: dict[str, dict] = {}
    for name, vbt_rules in (("reference", False), ("reference_vbt_rules", True)):
        rows: dict = {"fast": [], "slow": [], "round_trips": [], "pnl": [], "diag": [0, 0]}
        for f in FAST:
            for s in SLOW:
                r = run_reference(bars, fast=f, slow=s, vbt_rules=vbt_rules)
                rows["fast"].append(f)
                rows["slow"].append(s)
                rows["round_trips"].append(r.round_trips)
                rows["pnl"].append(r.pnl)
                if not vbt_rules:
                    rows["diag"][0] += int(r.diag[D_ENTRY_BAR_LEG])
                    rows["diag"][1] += int(r.diag[D_EXIT_AND_LEG])
        out[name] = rows
    return out


def render(runs: dict, refs: dict, load: str) -> str:
    """The RESULTS.md section: one table, the correctness check, the command."""
    best = {
        name: min((r for r in rows if "grid_seconds" in r), key=lambda r: r["grid_seconds"])
        for name, rows in runs.items()
        if any("grid_seconds" in r for r in rows)
    }
    ours = best.get("backstop")
    ref, ref_vbt = refs["reference"], refs["reference_vbt_rules"]
    lines = [
        BEGIN,
        "## Sweep: 100 (fast, slow) combinations on WORKLOAD M, backstop vs vectorbt",
        "",
        f"Recorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python bench/sweep_compare.py` "
        f"(all figures from that one run); machine {platform.machine()}, {_cpu()}, 2 cores "
        f"shared with other jobs ({load}). Grid: fast {FAST[0]}..{FAST[-1]} step "
        f"{FAST[1] - FAST[0]} x slow {SLOW[0]}..{SLOW[-1]} step {SLOW[1] - SLOW[0]}, "
        "1,000,000 bars each, so 100M bar-steps per grid. Method and caveats: `bench/SWEEP.md`.",
        "",
        "| engine | version | grid s (best) | every round s | combos/s | backstop is x faster "
        "| compile s (apart) | same round trips / same P&L as backstop | same trips and P&L as the "
        "reference with its own conventions |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, rows in runs.items():
        timed = [r for r in rows if "grid_seconds" in r]
        if not timed:
            err = next((r.get("error") for r in rows), "")
            lines.append(f"| {name} | | | | | | | | FAILED: {err} |")
            continue
        b = best[name]
        every = ", ".join(f"{r['grid_seconds']:.2f}" for r in timed)
        ratio = b["grid_seconds"] / ours["grid_seconds"] if ours else math.nan
        first = f"{b['first_run_seconds']:.2f}" if "first_run_seconds" in b else "n/a"
        label = name
        if name.startswith("backstop"):
            n = b["processes"]
            label = f"backstop ({n} process{'es' if n > 1 else ''}, {b['version']})"
            pairs = zip(ours["round_trips"], b["round_trips"], strict=True) if ours else ()
            trips = f"{sum(x == y for x, y in pairs)} / {agree(ours, b)[0]} of {b['combos']}"
            if name == "backstop":
                trips = "(itself)"
            own = f"{agree(ref, b)[0]} of {b['combos']} (project conventions)"
        else:
            pairs = zip(ours["round_trips"], b["round_trips"], strict=True) if ours else ()
            trips = f"{sum(x == y for x, y in pairs)} / {agree(ours, b)[0]} of {b['combos']}"
            if b.get("open_exit"):
                own = f"{agree(ref, b)[0]} of {b['combos']} (project conventions)"
            else:
                own = f"{agree(ref_vbt, b)[0]} of {b['combos']} (vectorbt's conventions)"
        lines.append(
            f"| {label} | {b['version'] if 'processes' not in b else 'this checkout'} | "
            f"{b['grid_seconds']:.2f} | {every} | "
            f"{b['combos'] / b['grid_seconds']:.2f} | {ratio:.2f} | {first} | {trips} | {own} |"
        )
    lines.append("")
    entry_legs, exit_legs = ref["diag"]
    same_rv, _ = agree(ref, ref_vbt)
    lines += [
        f"P&L per combination: tolerance {PNL_TOLERANCE:g} $ per round trip. The reference "
        "loop (`bench/peer_engines/reference.py`, WORKLOAD.md's rules followed literally) "
        "ran every combination twice: with the project's conventions and with vectorbt's "
        "two (bracket legs live only from the bar after the entry bar; on a signal-exit bar a "
        "touched leg exits at its level instead of the open). Over the grid it counted "
        f"{entry_legs:,} entry bars with a leg touched and {exit_legs:,} signal-exit bars with "
        f"a leg touched; the two conventions give the same P&L on {same_rv} of 100 "
        "combinations, so idiomatic vectorbt can agree with backstop's P&L on those only. The "
        "`_open_exit` run expresses the project's signal-exit rule in vectorbt (a signal-exit "
        "bar's high and low replaced by its open, per column; `bench/SWEEP.md`).",
        "",
    ]
    if ours:
        total = sum(ours["round_trips"])
        lines.append(
            f"backstop's grid: {total:,} round trips over the 100 runs, P&L of closed trades "
            f"from {min(ours['pnl']):,.2f} to {max(ours['pnl']):,.2f}."
        )
        lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Put the section into ``path`` in place of the previous one (else at the end)."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="WORKLOAD M parquet (default: bench/data/)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--single", action="store_true", help="also time backstop's sweep on one process"
    )
    parser.add_argument(
        "--engines",
        default="numba,rust,numba:open_exit",
        help="vectorbt runs: numba or rust, with :open_exit for the project's signal-exit rule",
    )
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--raw", type=Path, default=HERE / "sweep_results.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    if args.worker == "backstop":
        print(json.dumps(backstop_worker(args.data, args.processes)))
        return 0
    if args.worker:
        from peer_engines.vbt_sweep import main as vbt_main

        print(json.dumps(vbt_main(args.data, FAST, SLOW, args.worker)))
        return 0
    if args.data is None:
        from bench_backstop import ensure_data

        args.data = ensure_data("M")
    load = "load average before the run: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    runs = run_rounds(args.data.resolve(), args.rounds, args.processes, engines, args.single)
    refs = references(args.data.resolve())
    args.raw.write_text(json.dumps({"runs": runs, "references": refs}))
    write_section(args.out, render(runs, refs, load))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
