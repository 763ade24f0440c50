"""Restart safety of the step-by-step runner: stop anywhere, restore, continue, same journal.

A runner can be killed at any instant. Its checkpoint (``backstop.engine.checkpoint``) holds
the guardrail state, the portfolio, the verdicts, the input cursor and the simulated venue's
book; a run restored from it in a new process must end with exactly the records of the run
that never stopped: a HALTED account stays HALTED, the day's trade count and loss are kept,
and no signal is decided twice.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import bars, combine, control, entry, exit_, intents, split_settings
from test_properties import INSTRUMENTS, Case, calm_or_wild_cases

from backstop.domain.enums import ControlAction
from backstop.engine.checkpoint import load_checkpoint, save_checkpoint
from backstop.engine.config import BacktestConfig
from backstop.engine.journal import journal_digest, write_journal
from backstop.engine.profile import RiskProfile
from backstop.errors import BackstopError
from backstop.runners.stepwise import Stepwise, run_event_driven

TABLES = ("verdicts", "orders", "fills", "trades", "equity", "guard_events")


def _stepwise(case: Case) -> Stepwise:
    sim, profile = split_settings(case.config)
    return Stepwise(
        case.bars,
        intents(case.rows),
        BacktestConfig(**sim),
        instruments=INSTRUMENTS,
        profile=profile,
    )


def _assert_same(a, b) -> None:
    for name in TABLES:
        assert getattr(a, name).equals(getattr(b, name)), name


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=calm_or_wild_cases(), where=st.floats(0.0, 1.0))
def test_stop_anywhere_restore_continue_gives_the_same_records(case: Case, where: float) -> None:
    whole = _stepwise(case)
    whole.drive()
    first = _stepwise(case)
    stop = round(where * len(first.events))
    first.drive(until_event=stop)
    assert first.cursor.events_done == stop
    checkpoint = first.checkpoint()
    del first  # the process that held it is gone; a new one starts from the checkpoint
    second = _stepwise(case)
    second.restore(checkpoint)
    second.drive()
    _assert_same(whole.result(), second.result())


# ---- the guardrail state a restart must keep -------------------------------------------
def _path(n: int, start: float = 100.0) -> list[tuple[float, float, float, float]]:
    """Quiet bars around ``start``: no bracket of +-5% is touched."""
    return [(start, start + 0.2, start - 0.2, start) for _ in range(n)]


STRICT = RiskProfile().with_settings(
    {"risk.max_trades_per_day": 2, "entry.require_protection": True}
)


def _scenario() -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = combine(bars(_path(40), symbol="A"), bars(_path(40, 50.0), symbol="B"))
    rows = [
        entry(1, symbol="A", qty=10.0, stop_pct=0.05, target_pct=0.05),
        exit_(3, symbol="A"),
        entry(5, symbol="A", qty=10.0, stop_pct=0.05, target_pct=0.05),
        exit_(7, symbol="A"),
        entry(9, symbol="B", qty=10.0, stop_pct=0.05, target_pct=0.05),  # third today: refused
        control(11, int(ControlAction.KILL)),
        entry(30, symbol="B", qty=10.0, stop_pct=0.05, target_pct=0.05),  # halted: refused
    ]
    return frame, intents(rows)


def test_a_restart_keeps_the_day_count_and_the_halt(tmp_path: Path) -> None:
    frame, table = _scenario()
    whole = run_event_driven(frame, table, instruments=INSTRUMENTS, profile=STRICT)
    reasons = whole.verdicts.get_column("reason_codes").to_list()
    assert "MAX_TRADES_PER_DAY" in reasons[4] and "KILL_SWITCH_ACTIVE" in reasons[-1]
    for stop in (4, 6):  # before the third entry of the day; after the kill switch
        run = Stepwise(frame, table, instruments=INSTRUMENTS, profile=STRICT)
        run.drive(until_event=stop)
        path = run.save(tmp_path / f"{stop}" / "state.duckdb")
        again = Stepwise(frame, table, instruments=INSTRUMENTS, profile=STRICT)
        again.resume(path)
        assert again.cursor.events_done == stop  # decided signals are never decided again
        again.drive()
        _assert_same(whole, again.result())


def test_a_checkpoint_holds_the_mirror_and_the_bracket_plans(tmp_path: Path) -> None:
    """The driver's picture of the broker travels with the checkpoint: the restored mirror
    and bracket plans are the saved ones, and a checkpoint without them is refused."""
    frame, table = _scenario()
    run = Stepwise(frame, table, instruments=INSTRUMENTS, profile=STRICT)
    run.drive(until_event=4)
    assert run.driver.mirror.orders and run.driver.brackets.plans  # legs were placed
    again = Stepwise(frame, table, instruments=INSTRUMENTS, profile=STRICT)
    again.resume(run.save(tmp_path / "state.duckdb"))
    for part in ("mirror", "brackets"):  # as text: nan levels compare equal there
        saved, restored = (json.dumps(getattr(r.driver, part).to_dict()) for r in (run, again))
        assert restored == saved, part
    assert again.driver.fill_records().tolist() == run.driver.fill_records().tolist()
    checkpoint = run.checkpoint()
    parts = {k: v for k, v in checkpoint.parts.items() if k != "port"}
    bare = type(checkpoint)(checkpoint.run_id, checkpoint.counters, parts)
    with pytest.raises(BackstopError, match="checkpoint has no 'port' state"):
        Stepwise(frame, table, instruments=INSTRUMENTS, profile=STRICT).restore(bare)


def test_a_checkpoint_of_other_inputs_is_refused(tmp_path: Path) -> None:
    frame, table = _scenario()
    run = Stepwise(frame, table, instruments=INSTRUMENTS, profile=STRICT)
    run.drive(until_event=2)
    path = run.save(tmp_path / "state.duckdb")
    other = Stepwise(frame, table, instruments=INSTRUMENTS)  # another profile: another run
    with pytest.raises(BackstopError, match=rf"checkpoint belongs to run {run.run_id}, not"):
        other.resume(path)
    (tmp_path / "junk.duckdb").write_text("junk")
    with pytest.raises(BackstopError, match=r"junk\.duckdb: not a backstop checkpoint"):
        load_checkpoint(tmp_path / "junk.duckdb")
    with pytest.raises(BackstopError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "none.duckdb")


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path: Path) -> None:
    frame, table = _scenario()
    run = Stepwise(frame, table, instruments=INSTRUMENTS, profile=STRICT)
    run.drive(until_event=2)
    path = run.save(tmp_path / "state.duckdb")
    before = path.read_bytes()
    run.drive(until_event=3)
    # the temporary file cannot be created (a folder holds its name): the write fails
    (tmp_path / f".state.duckdb.{run.run_id}.partial").mkdir()
    with pytest.raises(BackstopError, match=r"state\.duckdb: checkpoint not written"):
        save_checkpoint(path, run.checkpoint())
    assert path.read_bytes() == before
    assert load_checkpoint(path).counter("events_done") == 2


# ---- killed for real ---------------------------------------------------------------------
CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path[:0] = [{root!r}, {tests!r}]  # this checkout's backstop, not an installed one
    from test_restart import _scenario, STRICT
    from test_properties import INSTRUMENTS
    from backstop.engine.journal import journal_digest, write_journal
    from backstop.runners.stepwise import Stepwise

    folder = Path(sys.argv[1])
    state = folder / "state.duckdb"
    frame, table = _scenario()
    run = Stepwise(frame, table, instruments=INSTRUMENTS, profile=STRICT)
    if state.exists():
        run.resume(state)
    print("start", run.cursor.events_done, flush=True)
    while not run.done:
        run.drive(until_event=run.cursor.events_done + 1)
        run.save(state)  # after every event: a kill loses at most the event in flight
        print("event", run.cursor.events_done, flush=True)
    journal = write_journal(run.result(), folder / "journal.duckdb", force=True)
    print("digest", journal_digest(journal), flush=True)
    """
)


def test_sigkill_at_random_points_and_restart(tmp_path: Path) -> None:
    frame, table = _scenario()
    whole = run_event_driven(frame, table, instruments=INSTRUMENTS, profile=STRICT)
    expected = journal_digest(write_journal(whole, tmp_path / "whole.duckdb"))
    script = tmp_path / "child.py"
    here = Path(__file__).parent
    script.write_text(CHILD.format(root=str(here.parent), tests=str(here)))
    folder = tmp_path / "run"
    folder.mkdir()
    rng = random.Random(20261205)
    kills = 0
    starts: list[int] = []
    digest = None
    for _ in range(40):  # bounded: each start either gets killed or finishes
        child = subprocess.Popen(
            [sys.executable, str(script), str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        assert child.stdout is not None
        target = rng.randint(0, 2)  # events to let through before the kill
        seen = 0
        deadline = time.monotonic() + 120
        for line in child.stdout:
            word, value = line.split()
            if word == "start":
                starts.append(int(value))
            elif word == "event":
                seen += 1
                if seen > target:
                    time.sleep(rng.uniform(0.0, 0.02))  # mid-event or mid-checkpoint
                    child.send_signal(signal.SIGKILL)
                    kills += 1
                    break
            elif word == "digest":
                digest = value
            assert time.monotonic() < deadline
        child.wait(timeout=60)
        if digest is not None:
            break
    assert digest == expected
    assert kills >= 3
    assert starts == sorted(starts) and starts[0] == 0  # never went back, never redid
