"""``backstop paper``: assemble a live run (broker, bar feed, session, runner) and run it.

Brokers come from the table in ``brokers.py`` (alpaca, alpaca-fake, ibkr, ibkr-fake): each
yields its adapter, how a fake market moves, its default symbols and its heartbeat; this
module never asks which broker it is. With a fake market the run ends by itself when the
bars are done; an in-process fake is a new market each run, so it cannot be resumed.

Modes: ``observe`` decides and journals but sends nothing (the session's broker is a
``Observer`` that answers no command); ``paper`` and ``live`` send (live: ``--confirm-live``
and a passing readiness checklist, checked by the broker's opener).
"""

from __future__ import annotations

from collections.abc import Callable
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
from backstop.runners.live.brokers import BROKERS as BROKER_TABLE
from backstop.runners.live.brokers import FAKE_KEYS
from backstop.runners.live.feeds import BrokerBarFeed
from backstop.runners.live.runner import JOURNAL, STATE, LiveRunner, Mode
from backstop.runners.live.session import LiveSession, LiveSetup

BROKERS = tuple(BROKER_TABLE)
DEMO_BARS = 390  # one session of 1-minute bars: the keyless demo's default length
__all__ = ["BROKERS", "FAKE_KEYS", "Observer", "PaperOptions", "run_paper"]


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
    host: str = "127.0.0.1"  # ibkr: where TWS / IB Gateway listens, and as which client
    port: int = 4002
    client_id: int = 1
    account: str = ""
    heartbeat_s: float = 5.0  # a broker with a heartbeat (ibkr) is pinged this often
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


def run_paper(opts: PaperOptions) -> dict[str, Any]:
    """Run a live session as ``opts`` say; return its summary."""
    check(opts.broker in BROKERS, ConfigError("--broker", f"one of {BROKERS}, got {opts.broker}"))
    check(
        opts.profile is not None or opts.mode != Mode.LIVE,
        ConfigError("--profile", "live trading needs an explicit risk profile"),
    )
    kind = BROKER_TABLE[opts.broker]
    fresh_fake = kind.fake and opts.fake_url is None
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
    with kind.open(opts) as link, link.broker as broker:
        symbols = opts.symbols or link.symbols
        check(symbols is not None, ConfigError("--symbols", "name the symbols to trade"))
        assert symbols is not None
        namespace = opts.namespace or _namespace(opts, strategy.name, symbols)
        setup = LiveSetup(
            strategy, opts.params, tuple(symbols), profile, namespace,
            config=opts.config, venue=Venue(reduce_only=False, native_brackets=True),
        )  # fmt: skip
        port: Any = Observer(broker) if opts.mode == Mode.OBSERVE else broker
        cash = float(broker.account().cash)
        session = LiveSession(setup, port, cash)
        feed = BrokerBarFeed(broker, session.symbols, opts.timeframe, advance=link.advance)
        notifier, closing = _notifier(opts.alert_webhook)
        runner = LiveRunner(
            session, port, feed, opts.run_dir, mode=opts.mode, notifier=notifier,
            on_step=opts.on_step, heartbeat=link.heartbeat, heartbeat_s=opts.heartbeat_s,
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
