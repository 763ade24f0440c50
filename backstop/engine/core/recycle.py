"""Record buffers that a process reuses from one run to the next.

A run writes its orders, fills, round trips, verdicts and events into fresh record arrays
(13 MB on WORKLOAD M, about 250 MB on W). Fresh memory is not free: the OS maps and zeroes
every page on first touch, and glibc hands a large freed block back to the OS, so the next
run pays again. On M that was about 3,400 page faults and a quarter of a warm run's time
(bench/PROFILE.md). A parameter sweep, a notebook re-running a backtest, the benchmark: all
run again in the same process.

So the large record buffers come from here. ``zeros(n, dtype)`` returns an array that reads
exactly like ``np.zeros`` (``empty`` skips the wipe, for a buffer its caller fills): its
memory is a block this module keeps, wiped before reuse. The array's base is a lease on
that block; when the last view of the array is gone (the run's result was dropped), the
lease hands the block back for the next run. Nothing that holds an array ever sees it
change, and a reused buffer reads the same as a fresh one, so results do not depend on what
ran before.

At most ``KEEP_BYTES`` of unused blocks are kept; ``release()`` drops them all (memory the
process keeps for its next run is still memory).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from typing import Any

import numpy as np

# buffers smaller than this come from the allocator's own free lists without page faults
MIN_BYTES = 1 << 20
# unused blocks kept for the next run, largest first dropped beyond it
KEEP_BYTES = 1 << 30
# a kept block serves a request of at least this fraction of its size (bounded waste)
FIT = 0.5


class _Block:
    """Memory kept between runs: ``buf`` (uint8) and how much of it a lease may have
    written since it was last zero (``dirty`` bytes from the start)."""

    __slots__ = ("buf", "dirty")

    def __init__(self, nbytes: int) -> None:
        self.buf = np.zeros(nbytes, dtype=np.uint8)
        self.dirty = 0


class _Lease:
    """The base object of a recycled array: exposes the block's first ``nbytes`` to numpy
    and returns the block when numpy lets go of it."""

    __slots__ = ("__array_interface__", "_block", "_home")

    def __init__(self, block: _Block, nbytes: int) -> None:
        self._block = block
        # the lease keeps the queue it returns to: a finaliser that runs at interpreter
        # shutdown, after the module's globals are cleared, still finds it
        self._home = _returned
        self.__array_interface__ = {
            "data": (block.buf.ctypes.data, False),
            "shape": (nbytes,),
            "typestr": "|u1",
            "version": 3,
        }

    def __del__(self) -> None:
        self._home.append(self._block)  # atomic: no lock taken inside a finaliser


_lock = threading.Lock()
_free: list[_Block] = []  # unused blocks, owned by ``zeros`` under ``_lock``
_returned: deque[_Block] = deque()  # blocks handed back by leases, drained under ``_lock``


def _after_fork_in_child() -> None:
    """A forked child gets a fresh lock: another thread may have held this one at the fork."""
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def zeros(n: int, dtype: Any) -> np.ndarray:
    """An array of ``n`` zero records of ``dtype``, on reused memory when a kept block fits."""
    return _lease(n, np.dtype(dtype), wipe=True)


def empty(n: int, dtype: Any) -> np.ndarray:
    """``zeros`` without the wipe, for a buffer its caller writes in full (``np.empty``)."""
    return _lease(n, np.dtype(dtype), wipe=False)


def _lease(n: int, dtype: np.dtype, wipe: bool) -> np.ndarray:
    nbytes = max(int(n), 0) * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.zeros(n, dtype=dtype)
    block = _take(nbytes)
    if wipe and block.dirty:
        block.buf[: min(block.dirty, nbytes)] = 0  # a fresh block reads zero beyond ``dirty``
    block.dirty = max(block.dirty, nbytes)
    raw = np.asarray(_Lease(block, nbytes))
    return raw.view(dtype)


def release() -> int:
    """Drop every kept block; returns the bytes given back to the allocator."""
    with _lock:
        _drain()
        dropped = sum(b.buf.nbytes for b in _free)
        _free.clear()
    return dropped


def kept_bytes() -> int:
    """Bytes of unused blocks kept for the next run."""
    with _lock:
        _drain()
        return sum(b.buf.nbytes for b in _free)


def _take(nbytes: int) -> _Block:
    """The smallest kept block that serves ``nbytes`` (removed from the free list), or a new
    one."""
    with _lock:
        _drain()
        # _free is sorted by size: the first block that holds ``nbytes`` is the smallest
        for k, block in enumerate(_free):
            if FIT * block.buf.nbytes <= nbytes <= block.buf.nbytes:
                return _free.pop(k)
    return _Block(nbytes)


def _drain() -> None:
    """Move returned blocks to the free list, dropping the largest beyond ``KEEP_BYTES``.
    Caller holds ``_lock``."""
    while _returned:
        _free.append(_returned.popleft())
    _free.sort(key=lambda b: b.buf.nbytes)
    total = sum(b.buf.nbytes for b in _free)
    while _free and total > KEEP_BYTES:
        total -= _free.pop().buf.nbytes
