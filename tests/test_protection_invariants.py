"""Broker-side invariants of the pipeline, checked at every step of random runs.

At every event and after every bar, at the simulated exchange (broker truth, read through
Broker port v2: its positions and open orders):

- no working reduce-only order (a bracket leg or an exit) could increase exposure if the
  broker filled all of it: it is on the side that reduces the position, and its unfilled
  quantity is at most the position held (flat: none is working);
- a position's working stop legs (stop loss or trailing) cover it exactly when it has any:
  their unfilled quantity adds up to the position, never more, never a part;
- the same for take-profit legs.

The runs are the property tests' random cases (entries with and without legs, limit and
market, partial fills under a volume cap, DAY and IOC orders, fees and slippage), driven by
the one Python drive loop with the checks as its decide hook.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from kit import intents, split_settings
from test_properties import INSTRUMENTS, Case, calm_or_wild_cases

from backstop.domain.enums import OrderRole
from backstop.engine.config import BacktestConfig
from backstop.runners.stepwise import Stepwise

EPS = 1e-9
STOPS = (int(OrderRole.STOP_LOSS), int(OrderRole.TRAILING))
TARGETS = (int(OrderRole.TAKE_PROFIT),)


def check_venue(run: Stepwise, where: str) -> None:
    """The invariants at the venue, through the port (its positions and open orders), with
    each order's role and reduce-only flag from the driver's mirror."""
    venue, mirror = run.venue, run.driver.mirror
    held = {p.symbol: p.qty for p in venue.positions()}
    orders = venue.open_orders()
    for symbol in venue.symbols:
        pos = held.get(symbol, 0.0)
        working = [
            (o, mirror.orders[o.client_order_id])
            for o in orders
            if o.symbol == symbol and mirror.orders[o.client_order_id].reduce_only
        ]
        for o, m in working:
            assert pos != 0.0, f"{where}: {symbol} flat with reduce-only order {m.order_no}"
            assert int(o.side) * pos < 0, f"{where}: order {m.order_no} adds to {pos}"
            assert o.remaining <= abs(pos) + EPS, f"{where}: order {m.order_no} {o.remaining}"
        for roles in (STOPS, TARGETS):
            legs = sum(o.remaining for o, m in working if m.role in roles)
            assert legs == 0.0 or abs(legs - abs(pos)) <= EPS, (
                f"{where}: {symbol} legs {roles} cover {legs} of {pos}"
            )


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(calm_or_wild_cases())
def test_exits_never_add_exposure_and_legs_cover_the_position(case: Case) -> None:
    sim, profile = split_settings(case.config)
    run = Stepwise(
        case.bars, intents(case.rows), BacktestConfig(**sim), instruments=INSTRUMENTS,
        profile=profile,
    )  # fmt: skip
    venue = run.venue
    real_on_bar = venue.on_bar

    def on_bar(i, *args, **kwargs):  # the venue matched bar i: check what it left working
        real_on_bar(i, *args, **kwargs)
        check_venue(run, f"after bar {i}")

    venue.on_bar = on_bar  # type: ignore[method-assign]
    for k in range(len(run.events) + 1):
        run.drive(until_event=k + 1)
        check_venue(run, f"after event {k}")
