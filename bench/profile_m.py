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
from backstop.engine.prepare import PreparedBars
from backstop.runners.backtest import Backtest

# What cProfile cannot see: time inside the compiled loop, measured with Linux perf
# (NUMBA_ENABLE_PROFILING=1 perf record on 60 warm M runs). Kept here so a rerun keeps it.
INSIDE_THE_LOOP = """
## Inside the compiled loop (perf, 2026-12-02)

`NUMBA_ENABLE_PROFILING=1 perf record` over 60 warm M runs, before this work: about half of
all samples sat on two instructions of numba's runtime, the atomic increment and decrement
of an array's reference count (NRT). numba increfs every array argument of a kernel on
entry, including each array inside a NamedTuple argument, and decrefs them on exit; LLVM only
removes the pairs in functions simple enough to be inlined. A call passing the 11-array
guard state cost ~120 ns before doing anything (microbenchmark: `state_gate_nb(g, ev)` 123
ns; the same state as a numba StructRef, one reference, 11 ns).

What was done: the per-bar pre-check is inlined (a position held through 1M bars: 0.068 s
-> 0.031 s, no-order baseline 0.026 s); the loop calls the signal handler directly; and the
four state containers (book, portfolio, verdicts, guard) are StructRefs
(`backstop/engine/core/state.py`). Gates once took only the guard arrays they read, which
helped while the guard was a NamedTuple; with the StructRef, passing the struct is cheaper
than passing even two arrays (`decide_signal_nb` in a loop: 413 ns -> 246 ns a call), so
they take it again. An A/B of the
StructRef change alone, alternating worktrees in one session (min of 15 M runs): 0.110-0.120
s before, 0.086-0.091 s after. Over the whole change, M went from 0.154 s to about 0.09 s
(this machine drifts by +-20% between sessions; compare within one run).

Second session of 2026-12-02: the per-bar pre-check, although inlined at numba level,
still copied the book's order arrays into its arguments on every bar a position was held:
an incref/decref pair per array per bar (the optimized IR of `run_loop_nb` showed the
`NRT_incref` calls in the loop body; IR inlining assigns each argument, and an assignment of
an array is a reference). Fixed, then the same cause followed kernel by kernel. All figures
are `run_backtest` on M with the intents precomputed, min of 11, one session:

| step | M ms |
| --- | --- |
| start of the session | 80.9 |
| pre-check reads order records (`bar_may_change_nb`), arrays bound once per call | 62.6 |
| order-book kernels take the book struct, not 2-5 of its arrays | 52.3 |
| portfolio carries multipliers; `equity_nb` / `apply_fill_nb` take the struct | 48.0 |
| `Market` is one StructRef per run (was a 7-array tuple per signal) | 41.0 |
| bar context passed as scalars to the signal and supervise kernels | 38.6 |
| room limits, counters, marks bound once per call | 35.3 |
| single-exit order kernels (own A/B, five alternating rounds: 33.2 before) | 31.9 |

`NRT_incref` / `NRT_decref` went from 46% of perf samples to about 26%. With the strategy
kernel also faster (per-symbol state in locals for a run of rows: 7.7 ms -> 4.7 ms on M),
`Backtest.run` on M measures 43-55 ms against the bare loop's 10-14 ms in the same minutes.

How to find them: compile with an empty `NUMBA_CACHE_DIR`, take
`run_loop_nb.inspect_llvm(sig)` and count `@NRT_incref` calls per defined function (48
functions are not inlined into the loop); perf resolves `NRT_incref` / `NRT_decref` by name
when the kernels were compiled in the profiled process, and the JIT addresses map to
functions through `library.get_pointer_to_function(name)` of the loop's code library.
Run it with `BACKSTOP_AOT=0`: by default the kernels are the ahead-of-time build's
(`backstop/engine/core/ahead.py`), whose symbols perf reads from the extension module.

What was left then: the increfs of struct arguments at kernel entry that LLVM's refcount
pruning does not remove (kernels with several exits: `handle_signal_nb` 7, `risk_gate_nb` 5,
`accept_order_nb` 4, `decide_signal_nb` 4, ...), about 0.3-0.5 us per signal or fill.
numba-level `inline="always"` was no way out (it copies each argument, and it doubled the
cold compile, 34 s -> 70 s, when tried on 53 helpers).

## No reference counting on the hot path (third session of 2026-12-02)

perf still put 20-29% of the samples of a warm M run on `NRT_incref` / `NRT_decref`, almost
all on the atomic instruction: the state structs passed to every kernel and the arrays read
from them. The state structs are now borrowed by compiled code
(`backstop/engine/core/state.py`): their numba type has a data model without a reference
count, their array fields are views without an owner (`borrow_nb`), and the Python proxy owns
the struct and its arrays; the market view is built in Python (`new_market`) and passed to the
loop. perf afterwards: no `NRT_*` samples at all. A/B of `run_backtest` on M (intents
precomputed, min of 15, four alternating rounds): 42.5-57.0 ms -> 32.5-41.7 ms. The cold
compile changed little (three alternating pairs: 24.4-29.6 s before, 23.6-24.6 s after; a
single pair earlier had suggested 28 s -> 19 s, which the alternation did not bear out).
`tests/test_state_structs.py` checks the ownership rules, including that a
run frees every numba allocation it makes (it caught a leak in the first version: numba's
structref unboxing acquires a reference that the call's clean-up releases through the data
model).

Then, one at a time (perf and A/B in CPU time, the VM being too noisy for wall time):

- The loop read `ts`, `open`, `volume` and `session` only on bars that may fill an order, so
  each read was a DRAM miss (19% of the loop's samples sat on the first of them): it now
  prefetches them 16 rows ahead (`prefetch_nb`). Loop share of samples 35% -> 27%.
- Event records are packed by a kernel in one pass (`pack_events_nb`) instead of 28 strided
  numpy field writes into a zeroed array; all-null intent columns are one shared array.
  `event_array` on M 5.7 ms -> 1.7 ms (W ~75 ms -> ~31 ms).
- The SMA kernel keeps a symbol's state in one row of two small arrays (interleaved symbols
  touched seven arrays a row): W 144-168 ms -> 126-136 ms.
- `equity_nb` walks the symbols holding a position (kept ascending by the fill booking, so
  the sum is the same) instead of all 100: W `run_backtest` 439-517 ms -> 425-464 ms.

Where a warm run's time goes now (perf, `Backtest.run` with the strategy): on M, the compiled
loop and its kernels ~50% of samples, the OS ~29% (page faults and zeroing of the record
buffers, ~9 MB of fresh memory a run, and polars' thread pool waking), polars, numpy and
Python the rest. On W the page zeroing alone is 20% (about 250 MB of records a run: 550k
orders of 216 bytes, 275k verdicts, fills, events), and two per-signal scans over all 100
symbols showed up: `equity_nb` 9% (now about half of that) and `exposure_gate_nb` 6% (it
reads the market view, broker truth, so it cannot use the portfolio's list). Those are what
remains between W and the bare loop.

## Branches that interleaved symbols make random (fourth session of 2026-12-02)

On W the rows cycle through 100 symbols, so a branch on a symbol's state is a coin flip from
one row to the next. Two of them were most of the gap to the bare loop there:

- The SMA kernel's cross test (`f > sl and pf <= ps`): dropping the test entirely took the
  kernel from 114 to 60 ms. It now computes both directions with `&` and branches only on
  "a cross happened" (2.7% of rows): 114 -> 72 ms, the same rows and directions; M unchanged.
- The loop's pre-check walked the bar's symbol's working orders: a branch on how many there
  are and a load of each order record (the hottest instructions of the loop in perf). The
  book now keeps a trigger band per symbol (`Book.band`, `exchange.refresh_band_nb`): a bar
  goes to the matcher only if its low reaches `band[s, 0]` or its high reaches `band[s, 1]`.
  A/B in CPU time, alternating worktrees: W 476-486 -> 369-378 ms, M unchanged.
- The verdict buffer was sized one per event while the loop keeps one per symbol spare, so
  a 100-symbol run doubled it near the end (a 275k-record copy, ~20 ms); it is sized with
  that headroom now.
- Quiet bars (no event, no working order the bar's range can reach, no new session day)
  go through a small inner loop that only marks the close, when the profile asks for no
  per-bar work beyond the day count. The full body kept the loop's many live values on the
  stack and reloaded them on every bar. M without intents: 5.9 -> 3.5 ms; M `run_backtest`
  22.1-23.3 -> 18.6-19.9 ms; W (with the band) 343-345 -> 246-252 ms.

Tried and left: the exposure gate's scan over all symbols (8.8% of W samples) costs the
same in a microbenchmark when it walks a list of the held symbols instead (the exact sum is a
chain of dependent adds either way); replacing the SMA's two divisions by multiplications
with an exact fallback near ties was slower (the fallback test became the random branch).
Where a warm M run goes now (perf over repeated `Backtest.run`): the SMA kernel 16% of
samples (its running sums are a chain of dependent adds, as in the bare loop), the loop's
quiet-bar path 14% (3.5 ms), the signal, order and fill kernels about 20% (roughly 9 ms for
27.7k signals and 13.8k round trips: gates, sizing, verdict, orders, legs, fills,
accounting, each journaled), the OS 25% (about 3,400 page faults a run on fresh record
memory, 13 MB; orders alone are 12 MB at 216 bytes each), and Python, polars and numpy set-up
the rest.

## Memory the OS gives twice, and panel data (2026-12-02, on an AMD EPYC machine)

This session's machine measured M at 2.98x and W at 3.04x the bare loop (bench_backstop
against bare_loop.py, same minutes), against 2.74x / 2.82x on the earlier Intel one: at the
target's edge. perf put a quarter of a warm M run in the kernel, mapping and zeroing pages.

- Record buffers are recycled (`backstop/engine/core/recycle.py`). glibc hands a large freed
  block back to the OS, so each run faulted its 13 MB of records in again (3,369 page faults
  per M run). Buffers of 1 MB and more now come from blocks kept between runs, wiped before
  reuse, returned when the last view of the array is gone (a result dropped). Faults per M
  run 3,369 -> 0-5; M best of 15 28.6-29.9 -> 21.2-21.4 ms (alternating worktrees).
  `GLIBC_TUNABLES` with fixed mmap/trim thresholds showed the same before anything was
  written. W barely moved: its buffers are hugepage-backed already (numpy madvises arrays of
  4 MB and more), so it paid for zeroing, not for faults.
- The SMA kernel on panel data (every symbol at every timestamp, rows in (ts, symbol)
  order) updates all symbols of a timestamp together: window slots, warm-up and re-sum are
  shared, and the per-symbol loops vectorise. Same operations per symbol in the same order,
  so the same crosses (property test against the row kernel). W kernel 78-105 -> 24-28 ms.
  Two things tried first: the row kernel walking each symbol's rows with a stride (no gain:
  every close its own cache line, 87-98 ms), and multiplying instead of dividing with an
  exact fallback (slower again on this machine: 4.8 vs 4.2 ms on M).
- The exposure gate's scan adds +0.0 for a flat symbol instead of branching on it (the
  held/flat pattern is a coin flip per symbol on W): 8.7% -> 3.3% of W samples, same bits.
- Equity: one call per closed trade only when the big-loss kill trigger reads it, and the
  walk over held symbols with an unsigned index and selects (microbenchmark 58-64 -> 43 ns).
- Event records: a strategy's own table is checked to be in decision order instead of
  sorted, numbered by the bars' symbol codes instead of by hashing names, and its buffer is
  not wiped before the kernel writes every field: `event_array` on W 34 -> 18.5 ms.

After these, perf over warm W runs: the loop 20%, equity 8%, the panel SMA kernel 7%, the
order/fill kernels ~20%, `_track_held_nb` 5.5%, numpy/polars set-up ~8%, the kernel 5%. On M
the Python/polars set-up (intent validation, event table, frames) is now ~7 ms of ~24: a
constant per run.
"""


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
        "```\n"
        + "\n".join(line for line in table.splitlines() if line.strip())
        + "\n```\n"
        + INSIDE_THE_LOOP
    )
    Path(__file__).with_name("PROFILE.md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
