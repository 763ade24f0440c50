"""nautilus_trader peer: a ``BacktestEngine`` fed bars, bracket orders from the order factory.

All symbols run in one engine (nautilus is multi-instrument), one strategy instance per
instrument. It needs pandas < 3, vectorbt 1.2 needs pandas >= 3, so it lives in its own
virtual environment (see setup_peers.sh); peers.py starts it there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from .common import BAR_NS, FAST, QTY, SL_PCT, SLOW, TP_PCT, SymbolBars

PRICE_PRECISION = 9
# nautilus gives each of a bar's four price points volume/4 of L1 liquidity and lets a market
# order walk the book past it (a partial fill, the rest a tick worse). The workload assumes
# fills at the price with no slippage, and volume plays no part in its rules, so the bars
# handed to nautilus carry their volume times this factor (min 100 * 1000 / 4 = 25,000 > 100).
VOLUME_SCALE = 1000.0
VENUE = "SIM"

NOTES = [
    "Strategy.on_bar with SimpleMovingAverage(10/50) registered for the bars: flat and fast",
    "crosses above -> submit_order_list(order_factory.bracket(BUY 100, MARKET entry, STOP_MARKET",
    "sl_trigger_price=P*0.99, LIMIT tp_price=P*1.02, OCO)); long and crosses below ->",
    "cancel_all_orders + close_all_positions. NETTING cash account, zero fees, L1 book,",
    "bar_execution with ts_init at the bar close; bar volumes x1000 so a 100-share order",
    "never walks nautilus' volume/4 L1 liquidity (no slippage, as the workload assumes).",
    "Not expressible: (1) no next-open fill for bar data - a market order sent from on_bar",
    "fills at that bar's close (documented; the maintainers' workaround, extra trade ticks",
    "at each open, changes what is measured), so entries and signal exits fill at the signal",
    "close, P is that close and the legs go live on the next bar; (2) fixed Open-High-Low-",
    "Close path, so when stop and target share a bar the target fills first; (3) a gap",
    "through the target fills at the limit price, not the better open. Prices rounded to 9",
    "decimals. Round trips from PositionClosed, P&L from the fills (realized_pnl is rounded",
    "to cents); open position at the end not counted. Timed: engine build, venue,",
    "instruments, add_data (sort), strategies, run, dispose; Bar objects built beforehand.",
]


@dataclass(frozen=True, slots=True)
class _Prepared:
    """Instruments and bars for one engine build."""

    instruments: list[Any]
    bar_types: list[Any]
    bars: list[list[Any]]


def _strategy_classes() -> tuple[type, type]:
    """Build the config and strategy classes lazily (nautilus is only in its own venv)."""
    from nautilus_trader.config import StrategyConfig
    from nautilus_trader.indicators import SimpleMovingAverage
    from nautilus_trader.model.data import Bar, BarType
    from nautilus_trader.model.enums import ContingencyType, OrderSide, OrderType
    from nautilus_trader.model.events import OrderFilled, PositionClosed
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.trading.strategy import Strategy

    class SmaCrossBracketConfig(StrategyConfig, frozen=True):
        """Which instrument and bars one strategy instance trades."""

        instrument_id: InstrumentId
        bar_type: BarType

    class SmaCrossBracket(Strategy):
        """Long-only SMA(10)/SMA(50) cross with a 1%/2% OCO bracket."""

        def __init__(self, config: SmaCrossBracketConfig) -> None:
            super().__init__(config)
            self.fast = SimpleMovingAverage(FAST)
            self.slow = SimpleMovingAverage(SLOW)
            self.prev_diff = float("nan")
            self.instrument: Any = None
            self.round_trips = 0
            self.pnl = 0.0
            self.open_cash = 0.0  # cash flow of the fills of the position now open

        def on_start(self) -> None:
            self.instrument = self.cache.instrument(self.config.instrument_id)
            self.register_indicator_for_bars(self.config.bar_type, self.fast)
            self.register_indicator_for_bars(self.config.bar_type, self.slow)
            self.subscribe_bars(self.config.bar_type)

        def on_bar(self, bar: Bar) -> None:
            if not self.slow.initialized:
                return
            diff = self.fast.value - self.slow.value
            prev = self.prev_diff
            self.prev_diff = diff
            if prev != prev:  # NaN: the first bar with both averages
                return
            iid = self.config.instrument_id
            if self.portfolio.is_flat(iid):
                if prev <= 0.0 < diff:
                    p = bar.close.as_double()
                    inst = self.instrument
                    bracket = self.order_factory.bracket(
                        instrument_id=iid,
                        order_side=OrderSide.BUY,
                        quantity=inst.make_qty(QTY),
                        contingency_type=ContingencyType.OCO,
                        entry_order_type=OrderType.MARKET,
                        sl_trigger_price=inst.make_price(p * (1.0 - SL_PCT)),
                        tp_price=inst.make_price(p * (1.0 + TP_PCT)),
                    )
                    self.submit_order_list(bracket)
            elif prev >= 0.0 > diff:
                self.cancel_all_orders(iid)
                self.close_all_positions(iid)

        def on_order_filled(self, event: OrderFilled) -> None:
            value = event.last_px.as_double() * event.last_qty.as_double()
            self.open_cash += -value if event.order_side == OrderSide.BUY else value

        def on_position_closed(self, event: PositionClosed) -> None:
            # realized_pnl is Money (rounded to cents); the fills give the unrounded figure.
            self.round_trips += 1
            self.pnl += self.open_cash
            self.open_cash = 0.0

    return SmaCrossBracketConfig, SmaCrossBracket


class NautilusPeer:
    """nautilus_trader BacktestEngine, all symbols in one engine."""

    name = "nautilus"

    def version(self) -> str:
        """nautilus_trader version."""
        import nautilus_trader

        return str(nautilus_trader.__version__)

    def notes(self) -> list[str]:
        """How this peer expresses the workload."""
        return list(NOTES)

    def prepare(self, data: Sequence[SymbolBars]) -> _Prepared:
        """Equity instruments (9-decimal prices, zero fees) and their 1-minute Bar objects."""
        from nautilus_trader.model.currencies import USD
        from nautilus_trader.model.data import Bar, BarType
        from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
        from nautilus_trader.model.instruments import Equity
        from nautilus_trader.model.objects import Price, Quantity

        instruments = []
        bar_types = []
        bars = []
        for s in data:
            iid = InstrumentId(Symbol(s.symbol), Venue(VENUE))
            inst = Equity(
                instrument_id=iid,
                raw_symbol=Symbol(s.symbol),
                currency=USD,
                price_precision=PRICE_PRECISION,
                price_increment=Price(10.0**-PRICE_PRECISION, PRICE_PRECISION),
                lot_size=Quantity.from_int(1),
                ts_event=0,
                ts_init=0,
                maker_fee=Decimal(0),
                taker_fee=Decimal(0),
            )
            bar_type = BarType.from_str(f"{iid}-1-MINUTE-LAST-EXTERNAL")
            ts_event = s.ts.astype(np.uint64)
            # Bars are stamped at their open; nautilus wants ts_init at the bar's close.
            ts_init = ts_event + np.uint64(BAR_NS)
            bars.append(
                Bar.from_raw_arrays_to_list(
                    bar_type,
                    PRICE_PRECISION,
                    0,
                    np.ascontiguousarray(s.open),
                    np.ascontiguousarray(s.high),
                    np.ascontiguousarray(s.low),
                    np.ascontiguousarray(s.close),
                    np.ascontiguousarray(s.volume * VOLUME_SCALE),
                    ts_event,
                    ts_init,
                )
            )
            instruments.append(inst)
            bar_types.append(bar_type)
        return _Prepared(instruments, bar_types, bars)

    def run(self, prep: _Prepared) -> tuple[int, float]:
        """Build a fresh engine, run it; return (closed round trips, realized P&L)."""
        from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
        from nautilus_trader.config import LoggingConfig
        from nautilus_trader.model.currencies import USD
        from nautilus_trader.model.enums import AccountType, OmsType
        from nautilus_trader.model.identifiers import TraderId, Venue
        from nautilus_trader.model.objects import Money

        config_cls, strategy_cls = _strategy_classes()
        engine = BacktestEngine(
            config=BacktestEngineConfig(
                trader_id=TraderId("BENCH-001"),
                logging=LoggingConfig(log_level="ERROR"),
                run_analysis=False,
            )
        )
        engine.add_venue(
            venue=Venue(VENUE),
            oms_type=OmsType.NETTING,
            account_type=AccountType.CASH,
            base_currency=USD,
            starting_balances=[Money(1_000_000_000, USD)],
            bar_execution=True,
            bar_adaptive_high_low_ordering=False,
        )
        strategies = []
        last = len(prep.instruments) - 1
        for k, (inst, bar_type, bars) in enumerate(
            zip(prep.instruments, prep.bar_types, prep.bars, strict=True)
        ):
            engine.add_instrument(inst)
            engine.add_data(bars, sort=k == last)
            strategy = strategy_cls(
                config_cls(instrument_id=inst.id, bar_type=bar_type, order_id_tag=f"{k:03d}")
            )
            engine.add_strategy(strategy)
            strategies.append(strategy)
        engine.run()
        trips = sum(s.round_trips for s in strategies)
        pnl = sum(s.pnl for s in strategies)
        engine.dispose()
        return trips, pnl
