"""The live session's growing bar columns (``runners/live/bars.py``) hold what a frame of
every bar seen would: the same rows, the kernels' arrays, and a per-bar context equal to the
one computed over the bars seen so far (the calendar's exactly; the quality score from each
symbol's last ``QUALITY_TAIL`` bars, so equal for sessions shorter than that)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import backstop
from backstop.data.quality import quality_scores
from backstop.engine.context import bar_context
from backstop.engine.inputs import bar_arrays, instrument_arrays
from backstop.engine.profile import RiskProfile
from backstop.runners.live import bars as live_bars
from backstop.runners.live.bars import LiveBars

SYMBOLS = ("SYN000", "SYN001", "SYN002")
CONTEXT = RiskProfile().with_settings(
    {"risk.market_hours": True, "risk.max_trades_per_day": 5, "risk.min_data_quality": 0.5}
)


def session(stamps: int, gap_at: int | None = None) -> list[pl.DataFrame]:
    """The sample's first bar times, one frame per bar time; with ``gap_at``, SYN001's bars
    stop there for 40 bar times (a stalled feed the quality score marks)."""
    bars = backstop.sample_bars().sort("ts", "symbol")
    first = bars.get_column("ts").unique().sort().head(stamps)
    bars = bars.filter(pl.col("ts").is_in(first.implode()))
    if gap_at is not None:
        stall = first[gap_at : gap_at + 40].implode()
        bars = bars.filter(~(pl.col("ts").is_in(stall) & (pl.col("symbol") == "SYN001")))
    return list(bars.partition_by("ts", maintain_order=True))


def grown(frames: list[pl.DataFrame], profile: RiskProfile) -> tuple[LiveBars, np.ndarray]:
    """The frames appended one bar time at a time; each new bar's quality as the whole
    history up to it scores it (what the session computed before the growing columns)."""
    specs = instrument_arrays(SYMBOLS)[1]
    store = LiveBars(SYMBOLS, specs, profile)
    expected_q: list[float] = []
    for frame in frames:
        lo = store.n
        store.append(frame)
        expected_q += quality_scores(store.frame())[lo:].tolist()
    return store, np.array(expected_q)


def test_rows_arrays_and_context_equal_those_of_the_whole_frame() -> None:
    frames = session(300, gap_at=120)
    store, expected_q = grown(frames, CONTEXT)
    whole = pl.concat(frames)
    assert store.frame().equals(whole)
    assert store.frame(10, 25).equals(whole.slice(10, 15))
    assert store.last_ts() == int(whole["ts"][-1]) and store.n == whole.height
    a, b = store.arrays(), bar_arrays(whole)
    for name in ("ts", "sym", "open", "high", "low", "close", "volume", "session"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.symbols == b.symbols
    ctx, ref = store.context(), bar_context(whole, b, instrument_arrays(SYMBOLS)[1], CONTEXT)
    for name in ("day", "in_hours", "close_ns"):
        assert np.array_equal(getattr(ctx, name), getattr(ref, name)), name
    assert np.array_equal(ctx.quality, expected_q)
    assert (expected_q < 1.0).sum() >= 1  # the stalled feed was scored down


def test_a_profile_without_context_keys_gets_the_plain_context() -> None:
    store, _ = grown(session(20), RiskProfile())
    ctx = store.context()
    assert (len(ctx.day), len(ctx.quality)) == (1, 1)  # one element stands for every row


def test_quality_judges_a_new_bar_against_the_tail_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_bars, "QUALITY_TAIL", 60)
    frames = session(200)
    store, _ = grown(frames, CONTEXT)
    whole = pl.concat(frames)
    last = store.n - len(frames[-1])
    tail = whole.slice(last - 60 * len(SYMBOLS), 60 * len(SYMBOLS) + len(frames[-1]))
    assert np.array_equal(store.context().quality[last:], quality_scores(tail)[-3:])
