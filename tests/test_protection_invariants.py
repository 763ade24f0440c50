"""Broker-side invariants of the pipeline, checked at every step of random runs.

At every event and after every bar, at the simulated exchange (broker truth):

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

from backstop.brokers.sim.exchange import SimExchange
from backstop.domain.enums import OrderRole
from backstop.engine.config import BacktestConfig
from backstop.engine.core.records import N_ORDERS
from backstop.runners.stepwise import Stepwise

EPS = 1e-9
STOPS = (int(OrderRole.STOP_LOSS), int(OrderRole.TRAILING))
TARGETS = (int(OrderRole.TAKE_PROFIT),)


def check_book(venue: SimExchange, where: str) -> None:
    book = venue.book
    orders = book.orders[: int(book.ctr[N_ORDERS])]
    for s, symbol in enumerate(venue.symbols):
        pos = float(book.xpos[s])
        working = [
            o
            for o in orders
            if int(o["sym"]) == s and 0 < int(o["status"]) < 4 and o["reduce_only"]
        ]  # ACCEPTED (2) or PARTIALLY_FILLED (3)
        for o in working:
            left = float(o["qty"] - o["filled"])
            assert pos != 0.0, f"{where}: {symbol} flat with reduce-only order {int(o['id'])}"
            assert int(o["side"]) * pos < 0, f"{where}: order {int(o['id'])} adds to {pos}"
            assert left <= abs(pos) + EPS, f"{where}: order {int(o['id'])} {left} > {pos}"
        for roles in (STOPS, TARGETS):
            legs = sum(float(o["qty"] - o["filled"]) for o in working if int(o["role"]) in roles)
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

    def on_bar(i, *args):  # the venue matched bar i: check what it left working
        real_on_bar(i, *args)
        check_book(venue, f"after bar {i}")

    venue.on_bar = on_bar  # type: ignore[method-assign]
    for k in range(len(run.events) + 1):
        run.drive(until_event=k + 1)
        check_book(venue, f"after event {k}")
