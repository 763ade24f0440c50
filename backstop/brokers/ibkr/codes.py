"""What IB's error messages (msg 4) mean to backstop: one table, one decision per code.

TWS reports order refusals, cancels, connectivity and plain information through the same
``error`` message. ``classify`` sorts a code into what the adapter does with it:

- ``REJECTED``: 201 ("Order rejected - reason: ...", e.g. "OCA group already filled"), and
  any other error on an order IB never accepted: a REJECTED event carrying IB's text;
- ``CANCELED``: 202 ("Order cancelled"): a CANCELED event;
- ``IGNORED``: warnings and notices (2104/2106/2158 market-data farm OK, 2100-2199, and the
  codes ib_async itself treats as warnings: 105, 110, 165, 321, 329, 399, 404, 434, 492,
  10167): nothing is reported, the order is still live;
- ``CONNECTION_LOST`` (1100) / ``CONNECTION_RESTORED`` (1101 data lost, 1102 data kept):
  the gateway lost or regained IB's servers; on restore the adapter re-reads orders,
  executions and positions (1101 and 1102 alike: a re-read costs little);
- ``ORDER_ERROR``: any other error on an order IB had accepted (a refused modify, a
  server-side cancel): ib_async marks the trade cancelled locally, which may be untrue
  (a refused modify leaves the order working), so the adapter reports nothing from it and
  re-reads the gateway's orders instead;
- ``OTHER``: an error on no order (a request, a contract look-up): logged.
"""

from __future__ import annotations

from enum import Enum

REJECTED_CODE = 201
CANCELED_CODE = 202
LOST_CODE = 1100
RESTORED_CODES = frozenset({1101, 1102})
# ib_async's own warning set (wrapper.error): it keeps the order live for these
_LIB_WARNINGS = frozenset({105, 110, 165, 321, 329, 399, 404, 434, 492, 10167})


class CodeKind(Enum):
    REJECTED = "rejected"
    CANCELED = "canceled"
    IGNORED = "ignored"
    CONNECTION_LOST = "connection lost"
    CONNECTION_RESTORED = "connection restored"
    ORDER_ERROR = "order error"
    OTHER = "other"


def is_warning(code: int) -> bool:
    """A notice that leaves every order as it was (ib_async's warnings, 2100-2199)."""
    return code in _LIB_WARNINGS or 2100 <= code < 2200


def classify(code: int, *, on_order: bool, accepted: bool) -> CodeKind:
    """What an error ``code`` means (``on_order``: its id is one of our orders;
    ``accepted``: IB had accepted that order). See the module doc."""
    if code == LOST_CODE:
        return CodeKind.CONNECTION_LOST
    if code in RESTORED_CODES:
        return CodeKind.CONNECTION_RESTORED
    if is_warning(code):
        return CodeKind.IGNORED
    if not on_order:
        return CodeKind.OTHER
    if code == CANCELED_CODE:
        return CodeKind.CANCELED
    if code == REJECTED_CODE or not accepted:
        return CodeKind.REJECTED
    return CodeKind.ORDER_ERROR
