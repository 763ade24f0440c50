"""``backstop replay``: load an incident, re-run it through today's guardrails, report.

PATH is a scenario folder (``incident.toml`` + inputs, optionally ``expect.toml``) or a
single log file. The profile is ``--profile``, else the scenario's ``expect.toml`` profile,
else ``post-incident``. Exit codes: 0 when every expectation holds (or there are none),
1 when one fails, 2 on bad input.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from backstop.engine.profile import RiskProfile
from backstop.replay.counterfactual import rerun
from backstop.replay.expect import Expectations, check_expectations, load_expectations
from backstop.replay.load import load_incident
from backstop.replay.outcome import Outcome, outcome_of

DEFAULT_PROFILE = "post-incident"


@dataclass
class ReplayRun:
    """A replay and the verdict on its scenario's expectations."""

    outcome: Outcome
    expectations: Expectations | None
    failures: list[str]


def replay(path: str | Path, profile: str | None = None, mode: str = "safe") -> ReplayRun:
    """Replay PATH under ``profile`` (a preset or a TOML file) and check its expectations."""
    path = Path(path)
    exp = None
    if path.is_dir() and (path / "expect.toml").exists():
        exp = load_expectations(path / "expect.toml")
    chosen = profile or (exp.profile if exp else None) or DEFAULT_PROFILE
    with gc_paused():
        incident = load_incident(path, mode=mode)  # type: ignore[arg-type]
        outcome = outcome_of(incident, rerun(incident, RiskProfile.load(chosen)))
    failures = check_expectations(outcome, exp) if exp and profile in (None, exp.profile) else []
    return ReplayRun(outcome, exp, failures)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a timeline is built.

    A 100,000-line log becomes ~80,000 small event records and their dicts; the collector,
    triggered by allocation counts, re-scans all of them again and again (a third of the
    replay's time in bench/bench_replay.py). They hold no reference cycles, so nothing is
    lost by collecting once afterwards instead.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
