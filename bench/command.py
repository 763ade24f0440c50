"""Time the whole ``backstop backtest`` command on WORKLOAD W against its floor.

    python bench/command.py [--size W] [--rounds 3] [--baseline OTHER_CHECKOUT]

The floor is what no backtest command can avoid: reading the Parquet file, the run itself
(strategy + compiled pipeline), and DuckDB's own ingest of the journal's tables (the same
tables, from Arrow, in one transaction, checkpointed). The command is timed end to end in a
fresh process (``python -m backstop.cli backtest --data FILE --journal DIR --json``; wall
seconds, interpreter start and imports included, and its own load/run/journal seconds), and
``Backtest(path).run()`` plus ``write_journal`` in a fresh process too. With ``--baseline``
every round runs the baseline checkout's command right before this one's, so both see the
same load on a shared machine; each figure is the best of ``--rounds``, and the two
journals are compared by ``journal_digest``. ``import backstop.cli`` is timed alone too, in a
fresh interpreter each round. CPU seconds (every thread, the command's and the
floor's) are reported beside the walls: a loaded machine stretches them least. Prints one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.bench_backstop import ensure_data  # noqa: E402

_FACADE = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from backstop.engine.journal import write_journal
from backstop.runners.backtest import Backtest
t1 = time.perf_counter()
result = Backtest(sys.argv[1]).run()
t2 = time.perf_counter()
write_journal(result, Path(sys.argv[2]), force=True)
t3 = time.perf_counter()
print(json.dumps({"facade_s": t3 - t1, "facade_run_s": t2 - t1, "facade_journal_s": t3 - t2}))
"""


def _command(checkout: Path, data: Path, out: Path) -> dict[str, float]:
    """One ``backstop backtest`` in a fresh process from ``checkout``: wall and its phases."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    cmd = [sys.executable, "-m", "backstop.cli", "backtest", "--data", str(data)]
    cmd += ["--journal", str(out), "--json", "--force"]
    t, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    payload = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "wall_s": wall,
        "cpu_s": _children_cpu() - cpu,
        "load_s": payload["load_seconds"],
        "run_s": payload["run_seconds"],
        "journal_s": payload["journal_seconds"],
        "round_trips": payload["round_trips"],
        "pnl": payload["pnl"],
    }


def _facade(checkout: Path, data: Path, out: Path) -> dict[str, float]:
    """``Backtest(path).run()`` and its journal, in a fresh process from ``checkout``."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    cpu = _children_cpu()
    proc = subprocess.run(
        [sys.executable, "-c", _FACADE, str(data), str(out)],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1]) | {"cpu_s": _children_cpu() - cpu}


def _imports(checkout: Path) -> float:
    """Seconds ``import backstop.cli`` takes in a fresh interpreter from ``checkout``: what
    every command pays before its first line runs."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    code = "import time; t = time.perf_counter(); import backstop.cli; "
    code += "print(time.perf_counter() - t)"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=checkout, env=env, capture_output=True, text=True
    )
    return float(proc.stdout.strip().splitlines()[-1])


def _children_cpu() -> float:
    """User + system seconds of the finished child processes so far: the work a command did,
    which a loaded machine stretches less than its wall time (all threads counted)."""
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def floor(data: Path, journal: Path) -> dict[str, float]:
    """Read the file, run, and let DuckDB ingest the journal's tables: the unavoidable part."""
    import duckdb
    import polars as pl

    from backstop.engine.journal import TABLES, read_table
    from backstop.engine.prepare import PreparedBars
    from backstop.runners.backtest import Backtest

    t, cpu = time.perf_counter(), time.process_time()
    raw = pl.read_parquet(data)
    read_s, read_cpu = time.perf_counter() - t, time.process_time() - cpu
    bt = Backtest(PreparedBars.of(raw.sort("ts", "symbol")))
    _ = bt.prepared.fingerprint  # hashed on a thread: finished before the run is timed
    cpu = time.process_time()
    result = bt.run()
    run_cpu = time.process_time() - cpu
    tables = {name: read_table(journal, name).to_arrow() for name in TABLES}
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "floor.duckdb"))
        t, cpu = time.perf_counter(), time.process_time()
        con.execute("BEGIN TRANSACTION")
        for name, arrow in tables.items():
            con.register("src", arrow)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM src")
            con.unregister("src")
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
        ingest_s, ingest_cpu = time.perf_counter() - t, time.process_time() - cpu
        con.close()
    walls = {"read_s": read_s, "run_s": result.run_seconds, "ingest_s": ingest_s}
    return walls | {"cpu_s": read_cpu + run_cpu + ingest_cpu}


def _floor_wall(f: dict[str, float]) -> float:
    """The floor's wall seconds: read + run + ingest."""
    return f["read_s"] + f["run_s"] + f["ingest_s"]


def _best(rows: list[dict[str, float]]) -> dict[str, float]:
    """The round with the smallest total (wall, or the facade's time)."""
    key = "wall_s" if "wall_s" in rows[0] else "facade_s"
    return min(rows, key=lambda r: r[key])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="W")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", type=Path, default=None, help="another checkout, run alternately")
    args = ap.parse_args()
    data = ensure_data(args.size)
    checkouts = {"this": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        k: {"command": [], "facade": []} for k in checkouts
    }
    imports: dict[str, list[float]] = {k: [] for k in checkouts}
    floors = []
    loads = [os.getloadavg()[0]]  # the machine's 1-minute load average, before each round
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name in reversed(list(checkouts)):  # the baseline first, then this checkout
                out = Path(tmp) / f"{name}{r}"
                runs[name]["command"].append(_command(checkouts[name], data, out))
                runs[name]["facade"].append(_facade(checkouts[name], data, Path(tmp) / "f.duckdb"))
                imports[name].append(_imports(checkouts[name]))
            floors.append(floor(data, Path(tmp) / f"this{r}" / "journal.duckdb"))
            loads.append(os.getloadavg()[0])
        if args.baseline:
            from backstop.engine.journal import journal_digest

            same = {journal_digest(Path(tmp) / f"{k}0" / "journal.duckdb") for k in checkouts}
    best_floor = min(floors, key=_floor_wall)
    floor_s = _floor_wall(best_floor)
    floor_cpu = min(f["cpu_s"] for f in floors)
    report: dict[str, object] = {"size": args.size, "rounds": args.rounds, "floor": best_floor}
    report["floor_s"] = floor_s
    report["floor_cpu_s"] = floor_cpu  # read + run + ingest, CPU seconds of every thread
    report["load_average"] = [round(x, 2) for x in loads]
    if args.baseline:
        report["journals_identical"] = len(same) == 1  # journal_digest of both checkouts' W
    for name, kinds in runs.items():
        cmd, fac = _best(kinds["command"]), _best(kinds["facade"])
        inside = cmd["load_s"] + cmd["run_s"] + cmd["journal_s"]
        report[name] = {
            "command": cmd,
            "command_phases_s": inside,
            "command_phases_over_floor": inside / floor_s,
            "command_wall_over_floor": cmd["wall_s"] / floor_s,
            "command_cpu_over_floor_cpu": min(c["cpu_s"] for c in kinds["command"]) / floor_cpu,
            # the wall outside the command's own phases: interpreter, imports, arguments,
            # summary and statistics, exit (best round's wall minus its phases)
            "command_outside_phases_s": cmd["wall_s"] - inside,
            "import_cli_s": min(imports[name]),  # best round, fresh interpreter
            "facade": fac,
            "facade_over_floor": fac["facade_s"] / floor_s,
            "all_command_walls_s": [round(c["wall_s"], 3) for c in kinds["command"]],
            "all_command_cpu_s": [round(c["cpu_s"], 3) for c in kinds["command"]],
            "all_facade_s": [round(f["facade_s"], 3) for f in kinds["facade"]],
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
