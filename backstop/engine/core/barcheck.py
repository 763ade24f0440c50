"""One pass over loaded bars: their engine arrays, symbol codes and problem counts at once.

Validating ten million bars in polars took a rechunk (a copy) plus one pass of ~17 masks and
an order test, and then ``bar_arrays`` converted the same columns again and numbered the
symbols with two more passes over the strings. These kernels do that work once, over the
columns as the Parquet reader left them (one array per chunk): copy each chunk into the
contiguous arrays the engine reads, counting every value problem on the way; number the
symbols from their 64-bit hashes; then renumber them in sorted order while testing the
(ts, symbol) order. ``backstop.data.scan`` drives them and checks the numbering exactly.

Count slots of ``copy_check_nb`` (``N_COUNTS``): 0-4 a value that is not finite (open, high,
low, close, volume); 5-8 a finite price that is not positive (open, high, low, close); 9 a
finite negative volume; 10 ``high < low`` with every price finite; 11 and 12 open and close
outside ``[low, high]`` with every price finite and ``high >= low``. The same rules, in the
same order, as the value checks of ``backstop.data.validate``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backstop.engine.core.ahead import kernel

N_COUNTS = 13


@njit(inline="always")
def _count_row(op, hp, lp, cp, vol, counts) -> None:
    """Add one bar's problems to ``counts`` (slots in the module doc). ``x - x == 0`` is the
    finiteness test: it is NaN for NaN and for either infinity."""
    fo, fh, fl, fc = op - op == 0.0, hp - hp == 0.0, lp - lp == 0.0, cp - cp == 0.0
    if not fo:
        counts[0] += 1
    elif op <= 0.0:
        counts[5] += 1
    if not fh:
        counts[1] += 1
    elif hp <= 0.0:
        counts[6] += 1
    if not fl:
        counts[2] += 1
    elif lp <= 0.0:
        counts[7] += 1
    if not fc:
        counts[3] += 1
    elif cp <= 0.0:
        counts[8] += 1
    if vol - vol != 0.0:
        counts[4] += 1
    elif vol < 0.0:
        counts[9] += 1
    if fo and fh and fl and fc:
        if hp < lp:
            counts[10] += 1
        else:
            if op < lp or op > hp:
                counts[11] += 1
            if cp < lp or cp > hp:
                counts[12] += 1


@kernel
def copy_check_nb(start, ts, values, out_ts, out_values, counts) -> None:
    """Copy one chunk (``ts`` and the five value columns ``values``) into the outputs at row
    ``start``, adding its problems to ``counts``."""
    o, h, lo, c, v = values
    oo, oh, ol, oc, ov = out_values
    for i in range(len(ts)):
        r = start + i
        out_ts[r] = ts[i]
        op, hp, lp, cp, vol = o[i], h[i], lo[i], c[i], v[i]
        oo[r] = op
        oh[r] = hp
        ol[r] = lp
        oc[r] = cp
        ov[r] = vol
        _count_row(op, hp, lp, cp, vol, counts)


@kernel
def check_nb(values, counts) -> None:
    """Add the problems of the five value columns ``values`` to ``counts`` (columns that are
    contiguous already: the engine reads them in place)."""
    o, h, lo, c, v = values
    for i in range(len(o)):
        _count_row(o[i], h[i], lo[i], c[i], v[i], counts)


@kernel
def ts_rises_nb(ts, prev) -> bool:
    """Whether no ``ts`` is below the one before it (``prev`` before the first): rows in
    (ts, symbol) order pass; most other orders fail here, before any copy."""
    for i in range(len(ts)):
        if ts[i] < prev:
            return False
        prev = ts[i]
    return True


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _code_known(hashes, start, codes, keys, vals, mask):
    """Code the rows from ``start`` while their hash is in the table; return the first row
    whose hash is not (or the row count). The hot loop, kept free of the insertions."""
    for i in range(start, len(hashes)):
        h = hashes[i]
        slot = h & mask
        while True:
            v = vals[slot]
            if v < 0:
                return i
            if keys[slot] == h:
                codes[i] = v
                break
            slot = (slot + np.uint64(1)) & mask
    return len(hashes)


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _put(keys, vals, h, code) -> None:
    """Enter hash ``h`` with ``code`` into the open-addressing table (linear probing)."""
    mask = np.uint64(len(keys) - 1)
    slot = h & mask
    while vals[slot] >= 0:
        slot = (slot + np.uint64(1)) & mask
    keys[slot] = h
    vals[slot] = code


@kernel
def hash_codes_nb(hashes, codes):
    """Number each row's symbol by its hash, in order of first appearance, into ``codes``;
    return the first row of each number. Rows with equal hashes get one number: the caller
    checks that equal hashes were equal symbols (``backstop.data.scan``)."""
    size = 1024
    keys = np.zeros(size, dtype=np.uint64)
    vals = np.full(size, -1, dtype=np.int32)  # -1: an empty slot
    first = np.empty(16, dtype=np.int64)
    n, i = 0, 0
    while True:
        i = _code_known(hashes, i, codes, keys, vals, np.uint64(size - 1))
        if i == len(hashes):
            break
        if n == len(first):
            grown = np.empty(2 * n, dtype=np.int64)
            grown[:n] = first
            first = grown
        first[n] = i
        if 2 * (n + 1) > size:  # keep the table at most half full: rehash into twice the room
            size *= 2
            old_keys, old_vals = keys, vals
            keys = np.zeros(size, dtype=np.uint64)
            vals = np.full(size, -1, dtype=np.int32)
            for s in range(len(old_keys)):
                if old_vals[s] >= 0:
                    _put(keys, vals, old_keys[s], old_vals[s])
        _put(keys, vals, hashes[i], np.int32(n))
        n += 1
    return first[:n].copy()


@kernel
def renumber_in_order_nb(ts, codes, rank, per_symbol) -> bool:
    """Replace each code by ``rank[code]`` (its symbol's place in sorted order), count the
    rows of each place into ``per_symbol``, and say whether the rows run by ts, then symbol:
    each row's ts above the previous row's, or equal with a greater symbol."""
    in_order = True
    prev_ts = ts[0] if len(ts) else 0
    prev = np.int32(-1)
    for i in range(len(ts)):
        code = rank[codes[i]]
        codes[i] = code
        per_symbol[code] += 1
        t = ts[i]
        if i and not (t > prev_ts or (t == prev_ts and code > prev)):
            in_order = False
        prev_ts, prev = t, code
    return in_order
