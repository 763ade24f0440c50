"""``backstop paper``: assemble a live run (broker, bar feed, session, runner) and run it.

Brokers:

- ``alpaca``: Alpaca through alpaca-py, keys from ``APCA_API_KEY_ID`` /
  ``APCA_API_SECRET_KEY``; paper endpoints unless ``--mode live`` (which also needs
  ``--confirm-live``, refuses paper keys and runs the readiness checklist first).
- ``alpaca-fake``: the loopback fake Alpaca (``backstop.testing.fake_alpaca``) started in
  this process over the bundled sample's first ``bars`` bar times (or ``--data``); the real
  alpaca-py client talks to it, so the whole live path runs, with no keys. The market moves
  one bar time each time the runner has finished the last one, and the run ends by itself
  when the bars are done. With ``fake_url`` the fake runs elsewhere (a test's process).

Modes: ``observe`` decides and journals but sends nothing (the session's broker is a
``Observer`` that answers no command); ``paper`` and ``live`` send.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from backstop.domain.commands import AmendOrder, CancelOrder, SubmitOrder
from backstop.domain.events import Account, BrokerEvent, BrokerOrder, BrokerPosition, Execution
from backstop.engine.brackets import Venue
from backstop.engine.broker import BrokerPort
from backstop.engine.config import BacktestConfig
from backstop.engine.profile import RiskProfile
from backstop.errors import ConfigError, check
from backstop.runners.live.feeds import BrokerBarFeed, fake_advance
from backstop.runners.live.runner import JOURNAL, STATE, LiveRunner, Mode
from backstop.runners.live.session import LiveSession, LiveSetup

BROKERS = ("alpaca", "alpaca-fake")
DEMO_BARS = 390  # one session of 1-minute bars: the keyless demo's default length
FAKE_KEYS = ("fake-key", "fake-secret")


@dataclass
class PaperOptions:
    broker: str
    strategy: Any
    params: dict[str, Any]
    symbols: tuple[str, ...] | None
    profile: str | RiskProfile | None
    mode: Mode
    run_dir: Path
    namespace: str = ""
    timeframe: str = "1Min"
    bars: int = DEMO_BARS
    data: pl.DataFrame | None = None
    fake_url: str | None = None
    max_steps: int | None = None
    confirm_live: bool = False
    config: BacktestConfig = field(default_factory=BacktestConfig)
    alert_webhook: str | None = None  # alerts also go to this URL (JSON POST)
    on_step: Callable[[LiveRunner], None] | None = None  # e.g. a terminal status line


class Observer:
    """OBSERVE mode: the broker's reads, none of its writes. Commands are recorded, never
    sent, and answered by nothing: the session decides and journals, the account is
    untouched."""

    def __init__(self, broker: BrokerPort) -> None:
        self.broker = broker
        self.commands: list[SubmitOrder | CancelOrder | AmendOrder] = []

    def submit(self, command: SubmitOrder) -> None:
        self.commands.append(command)

    def cancel(self, command: CancelOrder) -> None:
        self.commands.append(command)

    def amend(self, command: AmendOrder) -> None:
        self.commands.append(command)

    def account(self) -> Account:
        return self.broker.account()

    def positions(self) -> list[BrokerPosition]:
        return []

    def open_orders(self) -> list[BrokerOrder]:
        return []

    def order(self, client_order_id: str) -> BrokerOrder | None:
        return None

    def recent_fills(self, since_ns: int) -> list[Execution]:
        return []

    def last_price(self, symbol: str) -> float:
        return self.broker.last_price(symbol)

    def drain_events(self) -> list[BrokerEvent]:
        return []


def _strategy(spec: Any) -> Any:
    from backstop.runners.backtest import _strategy_of

    return _strategy_of(spec)


@contextlib.contextmanager
def _fake_market(opts: PaperOptions) -> Iterator[tuple[str | None, Any]]:
    """The loopback fake for ``alpaca-fake`` (None when the broker is real or the fake runs
    elsewhere): yields (url, fake)."""
    if opts.broker != "alpaca-fake" or opts.fake_url is not None:
        yield opts.fake_url, None
        return
    from backstop.testing.fake_alpaca import FakeAlpaca

    bars = opts.data
    if bars is None:
        from backstop.data import sample_bars

        bars = sample_bars()
    stamps = bars.get_column("ts").unique().sort().head(opts.bars)
    bars = bars.filter(pl.col("ts").is_in(stamps.implode()))
    if opts.symbols:
        bars = bars.filter(pl.col("symbol").is_in(list(opts.symbols)))
    with FakeAlpaca(bars, keys=FAKE_KEYS) as fake:
        yield fake.url, fake


def _alpaca(opts: PaperOptions, url: str | None) -> Any:
    from backstop.brokers.alpaca.adapter import AlpacaBroker
    from backstop.brokers.alpaca.config import AlpacaConfig, AlpacaKeys

    if opts.broker == "alpaca-fake":
        # orders and fills are read over REST after every bar the fake delivers: the
        # stream's timing would make the demo's journal depend on thread scheduling
        assert url is not None
        config = AlpacaConfig(paper=True, rest_url=url, data_url=url, retry_wait_s=0.05)
        return AlpacaBroker(config, AlpacaKeys(*FAKE_KEYS), stream=False)
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
        _ready_for_live(opts)
    return AlpacaBroker(AlpacaConfig(paper=opts.mode != Mode.LIVE), keys, stream=True)


def _ready_for_live(opts: PaperOptions) -> None:
    """Live trading starts only when the readiness checklist has no failure."""
    from backstop.runners.live.readiness import readiness

    assert opts.profile is not None
    failed = [c for c in readiness(opts.profile, "alpaca", "live", env=os.environ) if not c.passed]
    check(
        not failed,
        ConfigError(
            "--mode",
            "live refused: readiness failed ("
            + "; ".join(f"{c.name}: {c.detail}" for c in failed)
            + "); see backstop readiness",
        ),
    )


def run_paper(opts: PaperOptions) -> dict[str, Any]:
    """Run a live session as ``opts`` say; return its summary."""
    check(opts.broker in BROKERS, ConfigError("--broker", f"one of {BROKERS}, got {opts.broker}"))
    check(
        opts.profile is not None or opts.mode != Mode.LIVE,
        ConfigError("--profile", "live trading needs an explicit risk profile"),
    )
    fresh_fake = opts.broker == "alpaca-fake" and opts.fake_url is None
    check(
        not (fresh_fake and (Path(opts.run_dir) / STATE).exists()),
        ConfigError(
            "--journal",
            f"{opts.run_dir} already holds a session; the in-process fake starts a new market "
            "each run, so it cannot be resumed: give another --journal or remove that folder",
        ),
    )
    profile = (
        opts.profile if isinstance(opts.profile, RiskProfile) else RiskProfile.load(opts.profile)
    )
    strategy = _strategy(opts.strategy)
    with _fake_market(opts) as (url, fake):
        broker = _alpaca(opts, url)
        with broker:
            symbols = opts.symbols
            if symbols is None:
                check(fake is not None, ConfigError("--symbols", "name the symbols to trade"))
                symbols = tuple(fake.market.tape.symbols)
            namespace = opts.namespace or _namespace(opts, strategy.name, symbols)
            setup = LiveSetup(
                strategy, opts.params, tuple(symbols), profile, namespace,
                config=opts.config, venue=Venue(reduce_only=False),
            )  # fmt: skip
            port: Any = Observer(broker) if opts.mode == Mode.OBSERVE else broker
            cash = float(broker.account().cash)
            session = LiveSession(setup, port, cash)
            advance = None
            if opts.broker == "alpaca-fake":
                move = fake.advance if fake is not None else fake_advance(str(url), FAKE_KEYS)

                def advance() -> bool:
                    moved = bool(move())
                    broker.refresh()  # what the new bar filled, before the runner decides
                    return moved

            feed = BrokerBarFeed(broker, session.symbols, opts.timeframe, advance=advance)
            notifier, closing = _notifier(opts.alert_webhook)
            runner = LiveRunner(
                session, port, feed, opts.run_dir, mode=opts.mode, notifier=notifier,
                on_step=opts.on_step,
            )  # fmt: skip
            try:
                runner.start()
                steps = runner.run(max_steps=opts.max_steps)
            finally:
                if closing is not None:
                    closing.close()
            result = session.result(label=f"live:{opts.mode.value}")
    warnings = []
    # only a strategy that declares the bars it needs can be said to have had too few (one
    # that declares nothing sees a window of the last 500 and may signal from its first bar)
    needed = 0
    if strategy.bars_needed is not None:
        needed = int(strategy.bars_needed(session.params)[1])
    seen = session.bars.get_column("symbol").value_counts()
    short = sorted(
        s
        for s in session.symbols
        if int(seen.filter(pl.col("symbol") == s)["count"].sum()) < needed
    )
    if short:  # never a silent session: say why it could not signal
        warnings.append(
            f"{strategy.name} needs {needed} bars of a symbol before it can signal; "
            f"{', '.join(short)} had fewer in this session"
        )
    return {
        "broker": opts.broker,
        "mode": opts.mode.value,
        "namespace": namespace,
        "symbols": list(session.symbols),
        "steps": steps,
        "bars": session.bars.height,
        "verdicts": result.records.verdicts.shape[0],
        "orders": result.records.orders.shape[0],
        "fills": result.records.fills.shape[0],
        "round_trips": result.round_trips,
        "pnl": round(float(result.pnl), 2),
        "journal": str(opts.run_dir / JOURNAL),
        "warnings": warnings,
    }


def _notifier(webhook: str | None) -> tuple[Any, Any]:
    """The log sink, and with ``webhook`` a webhook sink behind a bounded queue (a slow
    endpoint never holds up the loop); returns (notifier, the part to close at the end)."""
    from backstop.runners.live.alerts import FanOut, LogSink, WebhookSink
    from backstop.runners.live.background import BackgroundNotifier

    if webhook is None:
        return LogSink(), None
    hook = BackgroundNotifier(WebhookSink(webhook))
    return FanOut([LogSink(), hook]), hook


def _namespace(opts: PaperOptions, strategy: str, symbols: tuple[str, ...]) -> str:
    """A stable client-id namespace for a run directory: the same directory restarted keeps
    its ids (a restart must recognise its own orders), another directory gets others."""
    import hashlib

    key = f"{Path(opts.run_dir).resolve()}|{strategy}|{','.join(sorted(symbols))}"
    return hashlib.sha256(key.encode()).hexdigest()[:10]
