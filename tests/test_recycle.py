"""Record buffers reused between runs (``backstop.engine.core.recycle``).

What reuse must never change: a buffer reads as zeros like ``np.zeros``, memory still held
by a live array is never handed out again, and a run's records are the same bytes whether
its buffers were fresh or left over from another run.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import threading

import numpy as np
import pytest

from backstop.data import gbm_bars
from backstop.engine.core import recycle
from backstop.engine.core.records import ORDER_DTYPE
from backstop.engine.prepare import PreparedBars
from backstop.runners.backtest import Backtest

N = 20_000  # orders: 4.3 MB, above recycle.MIN_BYTES
BARS = 60_000  # per symbol: a run whose order buffer is recycled


def _on_recycled_memory(arr: np.ndarray) -> bool:
    base = arr.base
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, recycle._Lease)


@pytest.fixture(autouse=True)
def _empty_pool() -> None:
    gc.collect()
    recycle.release()


def test_a_recycled_buffer_reads_as_zeros() -> None:
    first = recycle.zeros(N, ORDER_DTYPE)
    first_address = first.ctypes.data
    first["qty"] = 7.0
    first["id"] = -1
    del first
    again = recycle.zeros(N, ORDER_DTYPE)
    assert again.ctypes.data == first_address  # the same memory ...
    assert again.dtype == ORDER_DTYPE and again.shape == (N,)
    assert not again.view(np.uint8).any()  # ... wiped


def test_memory_a_live_array_holds_is_not_handed_out() -> None:
    held = recycle.zeros(N, ORDER_DTYPE)
    view = held[10:20]  # a run's records are views like this one
    del held
    other = recycle.zeros(N, ORDER_DTYPE)
    assert not np.shares_memory(view, other)
    view["qty"] = 1.0
    assert not other["qty"].any()


def test_a_block_returns_when_its_last_view_is_gone() -> None:
    buf = recycle.zeros(N, ORDER_DTYPE)
    nbytes = buf.nbytes
    view = buf[:5]
    del buf
    assert recycle.kept_bytes() == 0
    del view
    assert recycle.kept_bytes() == nbytes
    assert recycle.release() == nbytes
    assert recycle.kept_bytes() == 0


def test_small_and_much_smaller_requests_get_their_own_memory() -> None:
    small = recycle.zeros(10, ORDER_DTYPE)
    assert not _on_recycled_memory(small)  # the allocator recycles small blocks itself
    big = recycle.zeros(4 * N, ORDER_DTYPE)
    big_address = big.ctypes.data
    del big
    quarter = recycle.zeros(N, ORDER_DTYPE)  # under recycle.FIT of the kept block
    assert quarter.ctypes.data != big_address
    assert recycle.kept_bytes() == 4 * N * ORDER_DTYPE.itemsize


def test_a_shorter_reuse_wipes_what_it_exposes_and_a_longer_one_reads_zeros() -> None:
    buf = recycle.zeros(N, ORDER_DTYPE)
    buf["qty"] = 3.0
    del buf
    shorter = recycle.zeros(int(N * 0.75), ORDER_DTYPE)
    assert not shorter.view(np.uint8).any()
    shorter["qty"] = 4.0
    del shorter
    longer = recycle.zeros(N, ORDER_DTYPE)  # the tail was written by the first lease
    assert not longer.view(np.uint8).any()


def test_the_pool_keeps_at_most_keep_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recycle, "KEEP_BYTES", 6 * N * ORDER_DTYPE.itemsize)
    bufs = [recycle.zeros(N * k, ORDER_DTYPE) for k in (1, 2, 4)]
    del bufs
    assert recycle.kept_bytes() == 3 * N * ORDER_DTYPE.itemsize  # the largest dropped


def test_a_buffer_alive_at_interpreter_exit_is_returned_without_error() -> None:
    code = (
        "import numpy as np\n"
        "from backstop.engine.core import recycle\n"
        f"keep = recycle.zeros({N}, np.float64)\n"
        "view = keep[5:10]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stderr == ""  # no "Exception ignored in __del__" from a finaliser at exit


def test_threads_never_share_a_buffer() -> None:
    seen: list[tuple[int, bool]] = []
    lock = threading.Lock()

    def work(tag: int) -> None:
        for _ in range(20):
            buf = recycle.zeros(N, ORDER_DTYPE)
            clean = not buf["id"].any()
            buf["id"] = tag
            ok = bool((buf["id"] == tag).all())
            with lock:
                seen.append((tag, clean and ok))
            del buf

    threads = [threading.Thread(target=work, args=(t,)) for t in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 60 and all(ok for _, ok in seen)


def test_a_run_on_reused_buffers_writes_the_same_records() -> None:
    bars = PreparedBars.of(gbm_bars(BARS, 2, seed=3))
    other = PreparedBars.of(gbm_bars(BARS, 2, seed=4))
    fresh = Backtest(bars, "sma_cross").run().records
    fresh_bytes = [a.tobytes() for a in (fresh.orders, fresh.fills, fresh.trades, fresh.verdicts)]
    assert _on_recycled_memory(fresh.orders)
    del fresh
    Backtest(other, "sma_cross", fast=5, slow=20).run()  # leaves its buffers dirty
    gc.collect()
    assert recycle.kept_bytes() > 0
    again = Backtest(bars, "sma_cross").run().records
    assert [a.tobytes() for a in (again.orders, again.fills, again.trades, again.verdicts)] == (
        fresh_bytes
    )
