"""Glue for ``backstop paper --broker ibkr|ibkr-fake``: the IBKR adapter built from options.

Not wired into ``run_paper`` yet (the CLI options ``--host/--port/--client-id`` and the
broker names are the integrator's); this module holds the pieces ``paper.py``'s
``_alpaca`` and ``_fake_market`` hold for Alpaca:

- ``fake_gateway(opts)``: for ``ibkr-fake``, the loopback fake TWS gateway over the
  bundled sample's first ``opts.bars`` bar times (or ``opts.data``), started in this
  process with the fake Alpaca's $100,000; None for a real gateway.
- ``ibkr_broker(opts, conn, symbols, fake)``: the adapter, contracts of ``symbols`` checked
  against the instrument registry at start. Against the fake its status events are stamped
  with the fake's market clock (the tape's time), so a journal does not depend on the wall
  clock, and ib_async's 45-messages-a-second throttle (TWS's limit) is off; against a
  gateway, the system clock and the throttle.
- ``fake_advance(fake, broker)``: the bar feed's ``advance`` for the fake: the next bar,
  then one round trip so what it filled is heard before the runner decides.

Live trading (``--mode live``) needs ``--confirm-live`` and a passing readiness
checklist; the checklist does not cover IB yet, so live on IB is refused with that reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl

from backstop.brokers.ibkr import IBKRBroker, IBKRConfig
from backstop.errors import ConfigError, check
from backstop.runners.live.runner import Mode

FAKE_CLIENT_ID = 1
FAKE_CASH = 100_000.0  # the fake Alpaca's starting cash: the two demos trade alike


@dataclass(frozen=True)
class IBKRConnection:
    """Where the gateway listens (TWS paper 7497, IB Gateway paper 4002) and as whom."""

    host: str = "127.0.0.1"
    port: int = 4002
    client_id: int = 1
    account: str = ""


class FakeClock:
    """The fake gateway's market clock as a ``Clock`` (ns of its latest bar)."""

    def __init__(self, fake: Any) -> None:
        self._fake = fake

    def now_ns(self) -> int:
        return int(self._fake.now)


@contextlib.contextmanager
def fake_gateway(opts: Any) -> Iterator[Any]:
    """The in-process fake gateway for ``ibkr-fake`` (None for ``ibkr``)."""
    if opts.broker != "ibkr-fake":
        yield None
        return
    from backstop.testing.fake_ibkr import FakeIBKR

    bars = opts.data
    if bars is None:
        from backstop.data import sample_bars

        bars = sample_bars()
    stamps = bars.get_column("ts").unique().sort().head(opts.bars)
    bars = bars.filter(pl.col("ts").is_in(stamps.implode()))
    if opts.symbols:
        bars = bars.filter(pl.col("symbol").is_in(list(opts.symbols)))
    with FakeIBKR(bars, cash=FAKE_CASH) as fake:
        yield fake


def ibkr_broker(
    opts: Any, conn: IBKRConnection, symbols: tuple[str, ...], fake: Any = None
) -> IBKRBroker:
    """The adapter for ``opts.broker`` (``ibkr`` or ``ibkr-fake`` with ``fake`` running),
    not started (``with`` it)."""
    check(
        opts.broker in ("ibkr", "ibkr-fake"),
        ConfigError("--broker", f"ibkr or ibkr-fake, got {opts.broker!r}"),
    )
    if opts.broker == "ibkr-fake":
        check(fake is not None, ConfigError("--broker", "ibkr-fake needs its fake gateway"))
        config = IBKRConfig(
            host=fake.host, port=fake.port, client_id=FAKE_CLIENT_ID, max_requests_per_s=0
        )
        return IBKRBroker(config, clock=FakeClock(fake), symbols=symbols)
    if opts.mode == Mode.LIVE:
        check(
            opts.confirm_live,
            ConfigError("--mode", "live trading needs --confirm-live as well (real money)"),
        )
        raise ConfigError(
            "--mode",
            "live on IB refused: the readiness checklist does not cover ibkr yet; trade "
            "--mode paper against a paper account (TWS 7497, IB Gateway 4002)",
        )
    config = IBKRConfig(
        host=conn.host, port=conn.port, client_id=conn.client_id, account=conn.account
    )
    return IBKRBroker(config, symbols=symbols)


def fake_advance(fake: Any, broker: IBKRBroker) -> Callable[[], bool]:
    """The bar feed's ``advance`` against the fake: the next bar time, then one round trip
    (what it filled is heard before the runner decides); False when the tape is done."""

    def advance() -> bool:
        moved = bool(fake.advance())
        broker.refresh()
        return moved

    return advance
