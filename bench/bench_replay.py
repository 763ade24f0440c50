"""Replay of a 100,000-line bot log, end to end (issue: under 2 seconds).

Builds a scenario whose ``bot.log`` is the ES incident's log (seed 004's bot, mytrader
dialect) repeated with shifted times and fresh order ids until it has 100,000 lines, then
times ``backstop.runners.replay.replay`` on it: parsing, the counterfactual re-run through the
compiled pipeline (one decision per logged order, one price bar per logged price) and the
outcome, plus rendering the text report. Kernels are compiled (and cached) by a warm-up
replay of the real scenario first, so the figure is the steady-state cost a user sees.

    python bench/bench_replay.py [REPEAT]   # prints one JSON line (median of REPEAT, 3)
"""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "replays" / "es-reversal-2025-12-12"
LINES = 100_000


def build(folder: Path, n_lines: int = LINES) -> int:
    """Write the scenario into ``folder``; return the number of order decisions in it."""
    src = (SCENARIO / "bot.log").read_text().splitlines()
    stamp = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})")
    span = dt.timedelta(hours=1, minutes=10)
    out: list[str] = []
    k = 0
    while len(out) < n_lines:
        shift = span * k
        for line in src:
            m = stamp.match(line)
            t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S") + shift
            body = line[m.end() :]
            bump = 100000 * k
            body = re.sub(r"order_id=(\d+)", lambda g, b=bump: f"order_id={int(g[1]) + b}", body)
            body = re.sub(
                r"order (\d+) filled", lambda g, b=bump: f"order {int(g[1]) + b} filled", body
            )
            out.append(f"{t:%Y-%m-%d %H:%M:%S},{m.group(2)}{body}")
            if len(out) == n_lines:
                break
        k += 1
    (folder / "bot.log").write_text("\n".join(out) + "\n")
    toml = (SCENARIO / "incident.toml").read_text()
    toml = (
        toml.split("[[input]]")[0]
        + '[[input]]\npath = "bot.log"\nformat = "dialect:mytrader"\nsymbol = "ESZ5"\n'
    )
    (folder / "incident.toml").write_text(toml)
    return sum(1 for line in out if "_place_exit_order" in line)


def main() -> int:
    from backstop.replay.report import render_text
    from backstop.runners.replay import replay

    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    replay(SCENARIO)  # warm-up: compile or load the cached kernels
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        decisions = build(folder)
        for _ in range(repeat):
            t0 = time.perf_counter()
            run = replay(folder)
            render_text(run.outcome)
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    print(
        json.dumps(
            {
                "bench": "replay_100k_lines",
                "lines": LINES,
                "decisions": decisions,
                "events": len(run.outcome.incident.events),
                "seconds_median": round(median, 3),
                "seconds_all": [round(t, 3) for t in times],
                "under_2s": median < 2.0,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
