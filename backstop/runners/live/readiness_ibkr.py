"""The checklist lines that differ on Interactive Brokers: the gateway, the account, the clock.

IB has no API keys (TWS or IB Gateway authenticates the person at the gateway), so where
Alpaca checks keys, IB checks that the gateway answers on ``host:port`` with this client id,
and that the account it manages is the kind the mode needs: a paper account (``DU...``) for
OBSERVE and PAPER, a live one for LIVE (a live account under ``--mode paper`` fails too: paper
must never send to real money). The clock line compares the gateway's ``reqCurrentTime``
(whole seconds) with ours. One connection serves the three lines and is closed at once, so
the runner that starts next can take the same client id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from backstop.errors import BackstopError
from backstop.runners.live.check import Check

PAPER_ACCOUNT_PREFIX = "DU"  # IB paper accounts are DU..., live ones U... (or F... / I...)
EXCHANGE = "CMES"  # the futures backstop trades on IB are CME's


@dataclass(frozen=True)
class GatewayFacts:
    """What readiness read from the gateway (or why it could not)."""

    where: str
    accounts: tuple[str, ...] = ()
    now_ns: int = 0
    error: str = ""


def read_gateway(host: str, port: int, client_id: int, account: str = "") -> GatewayFacts:
    """Connect once, read the managed accounts and the gateway's clock, disconnect."""
    from backstop.brokers.ibkr import IBKRBroker, IBKRConfig

    where = f"{host}:{port} (client id {client_id})"
    try:
        config = IBKRConfig(
            host=host, port=port, client_id=client_id, account=account, connect_timeout_s=5.0
        )
        with IBKRBroker(config) as broker:
            return GatewayFacts(where, tuple(broker.accounts()), broker.gateway_time_ns())
    except BackstopError as exc:
        return GatewayFacts(where, error=str(exc))


def gateway_checks(
    facts: GatewayFacts,
    mode: str,
    account: str,
    clock: Callable[[Callable[[], int]], Check],
) -> list[Check]:
    """The gateway, account and clock lines from ``facts``; ``clock`` turns the gateway's
    time into the clock line (readiness's ``check_clock`` with its tolerance)."""
    if facts.error:
        return [
            Check("gateway", False, facts.error),
            Check("account", False, "not checked: the gateway did not answer"),
            Check("clock", False, "not asked: the gateway did not answer"),
        ]
    out = [Check("gateway", True, f"IB gateway {facts.where} answered")]
    out.append(check_account(facts.accounts, mode, account))
    out.append(clock(lambda: facts.now_ns))
    return out


def check_account(accounts: tuple[str, ...], mode: str, wanted: str = "") -> Check:
    """The account traded (``wanted``, or the login's only one) is paper for OBSERVE and
    PAPER and live for LIVE."""
    if wanted and wanted not in accounts:
        return Check("account", False, f"{wanted} is not managed by this login ({accounts})")
    if not wanted and len(accounts) != 1:
        listed = ", ".join(accounts) or "none"
        return Check("account", False, f"the login manages {listed}: name one with --account")
    acct = wanted or accounts[0]
    paper = acct.startswith(PAPER_ACCOUNT_PREFIX)
    kind = "a paper account" if paper else "a live account"
    if mode == "live" and paper:
        return Check("account", False, f"{acct} is {kind} (DU...); LIVE needs a live account")
    if mode != "live" and not paper:
        return Check(
            "account", False, f"{acct} is {kind}: --mode {mode} trades only paper accounts (DU...)"
        )
    return Check("account", True, f"{acct} ({kind})")
