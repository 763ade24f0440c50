"""Protection invariants through Broker port v2, at a broker that enforces nothing.

``PortFakeBroker(reduce_only=False)`` trades every order in full, as Alpaca and IB do: a
stop left working after the position closed would open a new one (seed 004's ES reversal).
Random signals, random bars and partial fills (``fill_cap``) run through the port driver;
after every reaction of the core (each time it has answered all the broker said):

- the mirror holds what the broker holds;
- every open position is covered: working protective orders (an OCO group counted once)
  plus working exits close exactly the position, never more;
- no execution of a reduce-only order ever moved a position through zero or away from it.
"""

from __future__ import annotations

from typing import Any

from fake_port_broker import PortFakeBroker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import bars, combine, entry, exit_, intents, price_paths, ts_of
from test_broker_parity import INSTRUMENTS, PROFILES, signal_rows

from backstop.domain.enums import OrderRole, OrderStatus
from backstop.domain.events import OrderUpdate
from backstop.domain.intents import conform_intents
from backstop.engine.brackets import Venue
from backstop.engine.config import BacktestConfig
from backstop.engine.context import bar_context
from backstop.engine.driver import PortDriver
from backstop.engine.inputs import bar_arrays, event_array, instrument_arrays
from backstop.engine.prepare import guard_for
from backstop.runners.drive import Cursor, drive

EPS = 1e-9
PROTECTIVE = (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT, OrderRole.TRAILING)


class CheckedDriver(PortDriver):
    """The port driver, checking the invariants each time it has settled."""

    checks = 0

    def on_broker_events(self) -> dict[int, int]:
        outer = not self._draining
        out = super().on_broker_events()
        if outer:
            check(self, self.port)  # type: ignore[arg-type]
            self.checks += 1
        return out


def check(driver: PortDriver, broker: PortFakeBroker) -> None:
    for symbol, held in broker.held.items():
        assert abs(driver.mirror.position(symbol) - held) < EPS, (symbol, held)
        groups: dict[str, float] = {}
        exits = 0.0
        for o in broker.orders.values():
            if o.symbol != symbol or not o.working or not o.reduce_only:
                continue
            assert o.side != (1 if held > 0 else -1), f"{o.cid} would add to the position"
            role = driver.mirror.orders[o.cid].role
            if role in PROTECTIVE:
                key = o.oco or o.cid
                groups[key] = max(groups.get(key, 0.0), o.remaining)
            else:
                exits += o.remaining
        closing = sum(groups.values()) + exits
        assert closing <= abs(held) + EPS, (symbol, held, groups, exits)
        if held != 0.0 and groups:
            assert abs(closing - abs(held)) < EPS, (symbol, held, groups, exits)


def run(frame, rows, profile, fill_cap) -> tuple[CheckedDriver, PortFakeBroker]:  # type: ignore[no-untyped-def]
    config = BacktestConfig()
    a = bar_arrays(frame.rechunk())
    inst, specs = instrument_arrays(a.symbols, INSTRUMENTS)
    events, strategies, _ = event_array(conform_intents(intents(rows)), frame, a.symbols)
    ctx = bar_context(frame, a, specs, profile)
    ticks = dict(zip(a.symbols, inst.tick.tolist(), strict=True))
    broker = PortFakeBroker(a.symbols, reduce_only=False, ticks=ticks, fill_cap=fill_cap)
    guard = guard_for(specs, strategies, profile, config.initial_cash)
    driver = CheckedDriver(
        broker, a.symbols, inst, config.sim_params(), config.initial_cash, profile, guard, ctx,
        run_id="inv", venue=Venue(reduce_only=False),
    )  # fmt: skip
    drive(broker, driver, a, events, Cursor())
    return driver, broker


def reduce_only_fills_never_cross(driver: PortDriver, broker: PortFakeBroker) -> None:
    held = dict.fromkeys(broker.held, 0.0)
    for ex in broker.executions:
        before = held[ex.symbol]
        after = before + int(ex.side) * ex.qty
        if driver.mirror.orders[ex.client_order_id].reduce_only:
            assert abs(after) < abs(before) + EPS and before * after >= -EPS, ex
        held[ex.symbol] = after


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_protection_covers_every_position_at_a_broker_without_reduce_only(
    data: st.DataObject,
) -> None:
    n = data.draw(st.integers(4, 14), label="bars")
    symbols = ("A", "B")[: data.draw(st.integers(1, 2), label="symbols")]
    ohlc = {s: data.draw(price_paths(n), label=f"bars {s}") for s in symbols}
    frame = combine(*(bars(rows, symbol=s) for s, rows in ohlc.items()))
    rows: list[dict[str, Any]] = data.draw(
        signal_rows({s: [r[3] for r in p] for s, p in ohlc.items()}), label="rows"
    )
    profile = data.draw(st.sampled_from(PROFILES), label="profile")
    cap = data.draw(st.sampled_from([None, 30.0, 70.0]), label="fill_cap")
    driver, broker = run(frame, rows, profile, cap)
    assert driver.checks > 0
    reduce_only_fills_never_cross(driver, broker)


def test_a_leg_fill_leaves_the_other_legs_only_what_the_working_exits_do_not_close() -> None:
    """Found by the property above: a short of 60 (a limit entry filled 30 + 30), an exit of
    10 working, and the stop moved through the price. At the next open the stop fills 30 (the
    broker's cap): 30 are held, the exit still closes 10, so the take-profit may close only
    20 more. Fitting the legs to the position alone left it at 30: 40 would close 30."""
    frame = bars([(50.0, 50.0, 50.0, 50.0)] * 6, symbol="A")
    short = entry(0, side=-1, otype=1, limit_px=49.0, stop_px=51.5, target_px=48.5, symbol="A")
    rows = [
        short,
        {"ts": ts_of(1), "symbol": "A", "kind": 3, "stop_px": 49.0},
        exit_(1, side=1, qty=10.0, symbol="A"),
    ]
    driver, broker = run(frame, rows, PROFILES[0], 30.0)
    assert driver.checks > 0
    stop, target = (broker.orders[c] for c in list(driver.mirror.orders)[1:3])
    assert (stop.filled, stop.status) == (50.0, OrderStatus.FILLED)
    assert target.status == OrderStatus.CANCELED
    resized = [
        e.qty
        for e in broker.log
        if isinstance(e, OrderUpdate) and e.client_order_id == target.cid and e.qty is not None
    ]
    assert resized[-1] == 20.0 and 30.0 not in resized  # the exit's rest, never the 30 held
    reduce_only_fills_never_cross(driver, broker)
