"""Profile one WORKLOAD M run (warm) and print where the time goes, by function.

    python bench/profile_m.py

Shows that the backtest path spends its time in the compiled kernels and in polars, plus a
constant set-up: no Python function is called per bar or per event.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import re
import sys
from pathlib import Path

from bench_backstop import ensure_data

from backstop.data import load_bars
from backstop.engine.backtest import Backtest, PreparedBars


def main() -> int:
    prepared = PreparedBars.of(load_bars(ensure_data("M")))
    Backtest(prepared, "sma_cross").run()  # compile / load kernels first
    profile = cProfile.Profile()
    profile.enable()
    result = Backtest(prepared, "sma_cross").run()
    profile.disable()
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out).sort_stats("tottime")
    stats.print_stats(12)
    total_calls = sum(v[1] for v in stats.stats.values())  # type: ignore[attr-defined]
    # file names relative to the repository or site-packages: no machine paths in the record
    root = str(Path(__file__).resolve().parents[1]) + "/"
    table = re.sub(r"\S*site-packages/", "", out.getvalue().replace(root, ""))
    text = (
        "# Profile of one WORKLOAD M run (warm kernels)\n\n"
        "Recorded by `python bench/profile_m.py`. The whole backtest makes "
        f"{total_calls:,} Python function calls for {prepared.arrays.n:,} bars and "
        f"{result.round_trips:,} round trips: time is in the compiled loop and the strategy "
        "kernel, plus a constant set-up in polars. No Python runs per bar or per event.\n\n"
        "```\n" + "\n".join(line for line in table.splitlines() if line.strip()) + "\n```\n"
    )
    Path(__file__).with_name("PROFILE.md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
