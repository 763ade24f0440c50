"""Re-protect a position a reconcile found unprotected, from the runner's own plan.

A position of ours whose protective legs are gone at the broker (cancelled behind the
bot's back, expired, lost in an outage) is a position with no stop. When the bracket plan
of the cycle that opened it knows its levels (an absolute stop or target, or fractions of
the entry's fill), the legs are placed again: the bracket manager makes the commands
exactly as it does for an entry fill whose pair is gone (a fresh pair, new client ids from
the cycle and the session's bar, so a runner that decides this again after a restart sends
the same ids, which the broker answers with the orders it has), and the driver sends them
through the port. Nothing here is broker logic.

When no plan knows the levels (an order adopted without a plan, a cycle that never had
levels), nothing is placed: the position stays reported, and when the profile requires
protection (``entry.require_protection``) a DESYNC control trips the kill switch, which
flattens or halts as the profile's ``kill.*`` keys say, as a position desync does.

"""

from __future__ import annotations

from dataclasses import dataclass

from backstop.domain.commands import OrderCommand, SubmitOrder
from backstop.domain.enums import ControlAction, OrderRole
from backstop.engine.mirror import EPS, MirrorOrder
from backstop.runners.live.session import LiveSession


@dataclass(frozen=True, slots=True)
class Reprotection:
    """What re-protecting one symbol did: the orders sent (client ids, empty when none),
    the quantity they cover, the entry whose plan gave the levels ('' when none did), and
    whether the kill switch was tripped for want of levels."""

    symbol: str
    client_order_ids: tuple[str, ...]
    qty: float
    entry: str = ""
    tripped: bool = False


def _has_levels(session: LiveSession, entry: MirrorOrder) -> bool:
    plan = session.driver.brackets.plans.get(entry.client_order_id)
    if plan is None:
        return False
    stop = plan.stop == plan.stop or plan.stop_pct > 0 or plan.trail_pct > 0
    target = plan.target == plan.target or plan.target_pct > 0
    return stop or target


def _entry_of(session: LiveSession, symbol: str, held: float) -> MirrorOrder | None:
    """The newest filled entry of ours on the position's side whose plan knows levels."""
    found = None
    for o in session.driver.mirror.orders.values():
        if (
            o.symbol == symbol
            and o.role == OrderRole.ENTRY
            and o.filled > EPS
            and (o.side > 0) == (held > 0)
            and _has_levels(session, o)
        ):
            found = o
    return found


def reprotect(session: LiveSession, symbol: str, held: float, covered: float) -> Reprotection:
    """Cover what ``held`` of ``symbol`` lacks (``covered`` is covered) from its plan, or,
    with no levels known, report it (and trip the kill switch when the profile requires
    protection). See the module doc."""
    missing = abs(held) - covered
    driver = session.driver
    entry = _entry_of(session, symbol, held)
    if entry is None or missing <= EPS:
        tripped = False
        if missing > EPS and bool(session.setup.profile.get("entry.require_protection")):
            session.control(ControlAction.DESYNC, qty=held, symbol=symbol)
            tripped = True
        return Reprotection(symbol, (), 0.0, tripped=tripped)
    bar = max(session.n_bars - 1, 0)
    ts = max(session.last_ts(), 0)
    commands: list[OrderCommand] = driver.brackets.reprotect(entry, missing, ts, bar)
    driver.send(commands)
    driver.on_broker_events()  # the broker's answers (accepted, or refused) are booked now
    cids: list[str] = []
    for c in commands:
        if isinstance(c, SubmitOrder):
            cids += [o.client_order_id for o in c]
        else:
            cids.append(c.client_order_id)
    return Reprotection(symbol, tuple(cids), missing, entry.client_order_id)
