"""The guards the seeds require before a bot trades live, each checked against a profile.

Why each is on the list (``/seeds``: the postmortems the project was built from):

- seed 000 (signal follower on Alpaca): brackets on every entry, 10 trades a day, $20k a
  day, a 20% drawdown halt, a 5% daily-loss circuit, and "new signals only" on a cold start;
- seed 001 (IBKR readiness document): $15 max risk per trade, 2 trades a day, $30 daily
  loss, lockout after 2 losses, the data-quality (DVS) gate, and a kill switch that
  flattens (on daily loss, bad data, desync);
- seed 003 (Magellan runners): at most 5 positions, no duplicate entries, size validation
  ("maximum based on account equity").

Exits are reduce-only in backstop whatever the profile says (an exit never adds exposure);
that line always passes and says so. Each other line passes when the profile turns the
guard on (for the account, or in a ``[strategy."*".*]`` table for every strategy), and names
the keys that would when it does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from backstop.runners.live.check import Check

if TYPE_CHECKING:
    from backstop.engine.profile import RiskProfile

KILL_TRIGGERS = (
    "kill.daily_loss_pct",
    "kill.daily_loss_dollars",
    "kill.min_equity",
    "kill.consecutive_losses",
    "kill.disconnect_seconds",
    "kill.min_data_quality",
)


@dataclass(frozen=True, slots=True)
class Guard:
    """One required guard: its line name, the seed rule, and the keys any of which turns it
    on (a bool key counts when true, a limit when set)."""

    name: str
    why: str
    keys: tuple[str, ...]


GUARDS: tuple[Guard, ...] = (
    Guard(
        "protective stop and target",
        "seeds 000 and 001: every entry goes out bracketed",
        ("entry.require_protection",),
    ),
    Guard(
        "max loss per trade",
        "seed 001: $15 max risk per trade",
        ("entry.max_loss_per_trade",),
    ),
    Guard(
        "daily loss limit",
        "seed 000: 5% daily-loss circuit; seed 001: $30 a day",
        ("risk.daily_loss_pct", "risk.daily_loss_dollars", "risk.circuit_loss_pct"),
    ),
    Guard(
        "max trades per day",
        "seed 000: 10 a day; seed 001: 2 a day",
        ("risk.max_trades_per_day", "risk.max_trades_per_day_account"),
    ),
    Guard("daily allocation", "seed 000: $20k a day", ("risk.daily_allocation",)),
    Guard("drawdown halt", "seed 000: 20% drawdown halts until reset", ("risk.drawdown_halt_pct",)),
    Guard(
        "loss-streak lockout",
        "seed 001: locked out after 2 losses in a row",
        ("risk.max_consecutive_losses", "kill.consecutive_losses"),
    ),
    Guard("max positions", "seed 003: at most 5 positions", ("risk.max_positions",)),
    Guard(
        "data quality",
        "seed 001: no entries on bad data, the DVS gate",
        ("risk.min_data_quality", "kill.min_data_quality"),
    ),
    Guard(
        "new signals only",
        "seed 000: a cold start acts only on signals newer than the cursor",
        ("risk.new_signals_only",),
    ),
    Guard(
        "order size limit",
        "seed 003: size validated against a maximum",
        ("orders.max_qty", "orders.max_notional"),
    ),
)


def _on(value: Any) -> bool:
    return value not in (None, False)


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}"


def guard_checks(profile: RiskProfile) -> list[Check]:
    """One check per required guard, in the order of the list (reduce-only exits first,
    duplicate entries and the kill switch after the table)."""
    out = [
        Check(
            "guard reduce-only exits",
            True,
            "always on: an exit may only reduce a position (EXIT_NO_EXPOSURE); "
            "no setting turns it off",
        )
    ]
    for guard in GUARDS:
        # a key counts when the account sets it or the profile gives it to every strategy
        found = [profile.every_strategy(k) for k in guard.keys]
        on = [f"{where} = {_shown(value)}" for where, value in found if _on(value)]
        name = f"guard {guard.name}"
        if on:
            out.append(Check(name, True, f"{', '.join(on)} ({guard.why})"))
        else:
            keys = " or ".join(guard.keys)
            out.append(Check(name, False, f"off: set {keys} ({guard.why})"))
    adds = profile.get("risk.allow_add_to_winner")
    out.append(
        Check(
            "guard duplicate entries",
            not adds,
            "risk.allow_add_to_winner = false: a second entry on a held symbol is refused "
            "(seed 003)"
            if not adds
            else "off: risk.allow_add_to_winner = true lets an entry add to a held position "
            "(seed 003: no duplicate entries)",
        )
    )
    out.append(_kill_check(profile))
    return out


def _kill_check(profile: RiskProfile) -> Check:
    """Seed 001: the kill switch trips by itself (daily loss, bad data, ...) and flattens.
    ``backstop kill`` (the manual switch) is always there; a profile must add a trigger."""
    triggers = [f"{k} = {_shown(profile.get(k))}" for k in KILL_TRIGGERS if _on(profile.get(k))]
    flatten = bool(profile.get("kill.flatten"))
    if triggers and flatten:
        return Check(
            "guard kill switch",
            True,
            f"{', '.join(triggers)}; kill.flatten = true; manual: backstop kill (seed 001)",
        )
    if not triggers:
        keys = " or ".join(KILL_TRIGGERS)
        return Check("guard kill switch", False, f"no automatic trigger: set {keys} (seed 001)")
    return Check(
        "guard kill switch",
        False,
        "kill.flatten = false: a tripped kill switch would leave positions open (seed 001)",
    )
