"""Ownership rules of the compiled core's state structs (``backstop.engine.core.state``).

Compiled code borrows the book, portfolio, verdicts, guard and market structs and their
arrays without reference counts; Python's proxy owns them. These tests pin what that relies
on: a struct is only built by its helper, kernels write the very arrays Python holds, and a
run allocates and frees the same number of numba objects (no leak, no double free).
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref

import numpy as np
import pytest

from backstop.brokers.sim.book import Book, new_book
from backstop.engine.core.decide import Market, new_market
from backstop.engine.core.portfolio import apply_fill_nb, equity_nb
from backstop.engine.core.records import FILL_DTYPE, new_portfolio


def test_a_state_struct_is_built_by_its_helper_only() -> None:
    with pytest.raises(TypeError, match="new_"):
        Market(*(np.zeros(2) for _ in range(7)))
    with pytest.raises(TypeError, match="new_"):
        Book()


def test_new_market_refuses_arrays_it_could_not_share() -> None:
    ok = np.zeros(3)
    with pytest.raises(TypeError, match="mark must be a contiguous 1-D float64 array"):
        new_market(ok, ok, np.zeros(6)[::2], ok, ok, ok, ok)
    with pytest.raises(TypeError, match="tick"):
        new_market(ok, ok, ok, ok, np.zeros(3, dtype=np.int64), ok, ok)


def test_kernels_write_the_arrays_python_holds() -> None:
    pf = new_portfolio(2, 10_000.0, 16)
    pos, acct = pf.pos, pf.acct
    fill = np.zeros(1, dtype=FILL_DTYPE)
    fill["sym"] = 1
    fill["side"] = 1
    fill["qty"] = 10.0
    fill["price"] = 50.0
    fill["fee"] = 1.0
    apply_fill_nb(pf, fill[0])
    assert pf.pos is pos and pf.acct is acct
    assert pf._meminfo.refcount == 1  # the kernel borrowed the struct, kept nothing
    assert pos.tolist() == [0.0, 10.0]
    assert acct[0] == pytest.approx(10_000.0 - 500.0 - 1.0)
    pf.mark[1] = 52.0  # a Python write is what the next kernel reads
    assert equity_nb(pf) == pytest.approx(10_000.0 - 1.0 + 20.0)


def test_replace_held_names_a_field_it_does_not_have() -> None:
    book = new_book(1, 4, 16, 16)
    with pytest.raises(KeyError, match="'order'"):
        book.replace_held(order=np.zeros(3))


def test_the_proxy_is_the_only_owner_of_a_struct_and_its_arrays() -> None:
    book = new_book(2, 4, 16, 16)
    orders = weakref.ref(book.orders)
    assert book._meminfo.refcount == 1
    del book
    gc.collect()
    assert orders() is None


# numba's allocation counters see what just-in-time kernels allocate; the ahead-of-time core
# (``ahead.py``: the same code, compiled at install) has an allocator of its own that counts
# nothing outside, so the count runs on the just-in-time kernels, in a process of its own
LEAK_CHECK = """
import gc
from numba.core.runtime import _nrt_python, rtsys
from backstop.data import gbm_bars
from backstop.engine.prepare import PreparedBars
from backstop.runners.backtest import Backtest
from backstop.engine.core import ahead

assert not ahead.in_use(), ahead.status()
prepared = PreparedBars.of(gbm_bars(3_000, 3, seed=7))
warm = Backtest(prepared, "sma_cross", fast=5, slow=20).run()  # compile outside the count
assert warm.equity.height > 0
del warm
_nrt_python.memsys_enable_stats()
try:
    gc.collect()
    before = rtsys.get_allocation_stats()
    for _ in range(2):
        result = Backtest(prepared, "sma_cross", fast=5, slow=20).run()
        assert result.round_trips > 0
        assert result.equity.height > 0  # the equity curve's kernels allocate too
        del result
    gc.collect()
    after = rtsys.get_allocation_stats()
finally:
    _nrt_python.memsys_disable_stats()
assert after.alloc - before.alloc > 0  # the count saw the runs
assert after.alloc - before.alloc == after.free - before.free
assert after.mi_alloc - before.mi_alloc == after.mi_free - before.mi_free
print("balanced", after.alloc - before.alloc)
"""


def test_a_run_frees_every_numba_allocation_it_makes() -> None:
    env = dict(os.environ, BACKSTOP_AOT="0")
    proc = subprocess.run(
        [sys.executable, "-c", LEAK_CHECK], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("balanced")
