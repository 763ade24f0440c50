"""The brokers ``backstop paper`` can trade through: one table, one opener each.

``BROKERS[name].open(opts)`` is a context manager that yields a ``Link``: the adapter (not
started), the bar feed's ``advance`` when the market is a loopback fake whose clock moves
only when the runner has finished a bar, the fake's symbols (the default ``--symbols``),
and the heartbeat when the adapter has one. ``run_paper`` knows nothing else of a broker,
so a new one is a new row here, never an ``if broker == ...`` in the runner.

- ``alpaca``: alpaca-py, keys from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``; paper
  endpoints unless ``--mode live`` (``--confirm-live``, no paper keys, readiness passes),
  or those ``APCA_API_BASE_URL`` / ``APCA_API_DATA_URL`` / ``APCA_API_STREAM_URL`` name.
  Orders and fills come from the trade-updates stream (REST re-reads after reconnects).
- ``alpaca-fake``: the loopback fake Alpaca in this process (or at ``fake_url``).
- ``ibkr``: a TWS / IB Gateway at ``host:port`` as ``client_id`` through ib_async; ``--mode
  live`` needs ``--confirm-live`` and a passing IB readiness checklist (a live account,
  the gateway's clock in step). With ``fake_url`` the gateway is a fake gateway run
  elsewhere (a test's process): its clock is moved over that control URL, and status
  events are stamped with its market clock.
- ``ibkr-fake``: the loopback fake TWS gateway in this process over the bundled sample's
  bars (``backstop.runners.live.ibkr.fake_gateway``), the real ib_async client.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl

from backstop.domain.enums import ControlAction
from backstop.errors import ConfigError, check
from backstop.runners.live.runner import Mode

FAKE_KEYS = ("fake-key", "fake-secret")


@dataclass
class Link:
    """A broker ready to be started (``with link.broker``), and how its market moves."""

    broker: Any
    advance: Callable[[], bool] | None = None
    symbols: tuple[str, ...] | None = None
    heartbeat: Any = None


@dataclass(frozen=True)
class BrokerKind:
    name: str
    venue: str  # the readiness checklist's broker: alpaca or ibkr
    fake: bool  # an in-process fake: a new market each run, so a run cannot be resumed
    open: Callable[[Any], contextlib.AbstractContextManager[Link]]


class IBKRHeartbeat:
    """The IB adapter's heartbeat for the runner: ``beat()`` is one round trip (a gateway
    that stopped answering is dropped and reported lost), ``controls()`` the
    CONNECTION_LOST / RESTORED transitions since the last call."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker

    def beat(self) -> None:
        self.broker.refresh()

    def controls(self) -> list[ControlAction]:
        return list(self.broker.connection_events())


def _then_refresh(move: Callable[[], bool], broker: Any) -> Callable[[], bool]:
    """The market's next bar, then one round trip: what it filled is heard before the
    runner decides."""

    def advance() -> bool:
        moved = bool(move())
        broker.refresh()
        return moved

    return advance


def ready_for_live(
    profile: Any, venue: str, confirm: bool, gateway: tuple[str, int, int, str]
) -> None:
    """Live trading starts only with ``--confirm-live`` and a readiness list with no
    failure (``gateway``: IB's host, port, client id and account)."""
    from backstop.runners.live.readiness import readiness

    check(confirm, ConfigError("--mode", "live trading needs --confirm-live as well (real money)"))
    checks = readiness(profile, venue, "live", env=os.environ, gateway=gateway)
    failed = [c for c in checks if not c.passed]
    check(
        not failed,
        ConfigError(
            "--mode",
            "live refused: readiness failed ("
            + "; ".join(f"{c.name}: {c.detail}" for c in failed)
            + "); see backstop readiness",
        ),
    )


def _gateway(opts: Any) -> tuple[str, int, int, str]:
    return (opts.host, int(opts.port), int(opts.client_id), opts.account)


# ---- Alpaca ---------------------------------------------------------------------------------
def fake_tape(opts: Any) -> pl.DataFrame:
    """The fake's tape: ``opts.data`` or the bundled sample, its first ``opts.bars`` bar
    times, only ``opts.symbols`` when given."""
    bars = opts.data
    if bars is None:
        from backstop.data import sample_bars

        bars = sample_bars()
    stamps = bars.get_column("ts").unique().sort().head(opts.bars)
    bars = bars.filter(pl.col("ts").is_in(stamps.implode()))
    if opts.symbols:
        bars = bars.filter(pl.col("symbol").is_in(list(opts.symbols)))
    return bars


@contextlib.contextmanager
def _alpaca(opts: Any) -> Iterator[Link]:
    from backstop.brokers.alpaca.adapter import AlpacaBroker
    from backstop.brokers.alpaca.config import AlpacaConfig, AlpacaKeys

    keys = AlpacaKeys.from_env()
    if opts.mode == Mode.LIVE:
        check(
            opts.confirm_live,
            ConfigError("--mode", "live trading needs --confirm-live as well (real money)"),
        )
        check(
            not os.environ.get("APCA_API_KEY_ID", "").startswith("PK"),
            ConfigError("APCA_API_KEY_ID", "paper keys (PK...) cannot trade --mode live"),
        )
        ready_for_live(opts.profile, "alpaca", opts.confirm_live, _gateway(opts))
    config = AlpacaConfig.from_env(paper=opts.mode != Mode.LIVE)
    yield Link(AlpacaBroker(config, keys, stream=True))


@contextlib.contextmanager
def _alpaca_fake(opts: Any) -> Iterator[Link]:
    from backstop.brokers.alpaca.adapter import AlpacaBroker
    from backstop.brokers.alpaca.config import AlpacaConfig, AlpacaKeys
    from backstop.runners.live.feeds import fake_advance

    def broker(url: str) -> Any:
        # orders and fills are read over REST after every bar the fake delivers: the
        # stream's timing would make the demo's journal depend on thread scheduling
        config = AlpacaConfig(paper=True, rest_url=url, data_url=url, retry_wait_s=0.05)
        return AlpacaBroker(config, AlpacaKeys(*FAKE_KEYS), stream=False)

    if opts.fake_url is not None:
        b = broker(opts.fake_url)
        yield Link(b, _then_refresh(fake_advance(opts.fake_url, FAKE_KEYS), b))
        return
    from backstop.testing.fake_alpaca import FakeAlpaca

    with FakeAlpaca(fake_tape(opts), keys=FAKE_KEYS) as fake:
        b = broker(fake.url)
        yield Link(b, _then_refresh(fake.advance, b), tuple(fake.market.tape.symbols))


# ---- Interactive Brokers --------------------------------------------------------------------
class RemoteFakeClock:
    """A fake gateway's market clock read over its control URL: the time of its latest
    bar, learnt at start and from every advance's answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._now = self._read("GET", "/_fake/state")[1]

    def _read(self, method: str, path: str) -> tuple[bool, int]:
        import pandas as pd

        data = b"{}" if method == "POST" else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = json.loads(answer.read())
        return bool(body.get("moved", True)), int(pd.Timestamp(body["now"]).value)

    def now_ns(self) -> int:
        return self._now

    def advance(self) -> bool:
        moved, self._now = self._read("POST", "/_fake/advance")
        return moved


@contextlib.contextmanager
def _ibkr(opts: Any) -> Iterator[Link]:
    from backstop.brokers.ibkr import IBKRBroker, IBKRConfig

    check(opts.symbols, ConfigError("--symbols", "name the symbols to trade on IB"))
    if opts.mode == Mode.LIVE:
        check(opts.fake_url is None, ConfigError("--mode", "live needs a real gateway"))
        ready_for_live(opts.profile, "ibkr", opts.confirm_live, _gateway(opts))
    where = {"host": opts.host, "port": opts.port, "client_id": opts.client_id}
    if opts.fake_url is None:
        b = IBKRBroker(IBKRConfig(**where, account=opts.account), symbols=opts.symbols)
        yield Link(b, heartbeat=IBKRHeartbeat(b))
        return
    clock = RemoteFakeClock(opts.fake_url)
    # a fake's tape is no real market: no TWS throttle, status times on its clock
    config = IBKRConfig(**where, account=opts.account, max_requests_per_s=0)
    b = IBKRBroker(config, clock=clock, symbols=opts.symbols)
    yield Link(b, _then_refresh(clock.advance, b), heartbeat=IBKRHeartbeat(b))


@contextlib.contextmanager
def _ibkr_fake(opts: Any) -> Iterator[Link]:
    from backstop.runners.live.ibkr import IBKRConnection, fake_advance, fake_gateway, ibkr_broker

    check(opts.mode != Mode.LIVE, ConfigError("--mode", "the fake gateway cannot trade live"))
    with fake_gateway(opts) as fake:
        symbols = tuple(opts.symbols or fake.symbols)
        b = ibkr_broker(opts, IBKRConnection(), symbols, fake)
        yield Link(b, fake_advance(fake, b), symbols, IBKRHeartbeat(b))


BROKERS: dict[str, BrokerKind] = {
    "alpaca": BrokerKind("alpaca", "alpaca", False, _alpaca),
    "alpaca-fake": BrokerKind("alpaca-fake", "alpaca", True, _alpaca_fake),
    "ibkr": BrokerKind("ibkr", "ibkr", False, _ibkr),
    "ibkr-fake": BrokerKind("ibkr-fake", "ibkr", True, _ibkr_fake),
}
