"""Market data from the tape: ``/v2/stocks/bars`` (paginated) and ``/v2/stocks/bars/latest``.

Only bars stamped at or before the clock are served: a request whose ``end`` lies in the
fake's future is cut at ``now`` (no look-ahead). Pages follow Alpaca's layout: symbols in
alphabetical order, each symbol's bars in time order (``sort=desc`` reverses the time order),
at most ``limit`` bars per page in all (default 1000, at most 10000), and a
``next_page_token`` while bars remain. Only the tape's own bar size is served; any other
``timeframe`` is refused with 422 rather than answered wrongly.
"""

from __future__ import annotations

from typing import Any

from backstop.testing.fake_alpaca import wire
from backstop.testing.fake_alpaca.market import Market
from backstop.testing.fake_alpaca.orders import CODE_INVALID, Refused
from backstop.testing.fake_alpaca.tape import count_upto

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000


def _symbols(params: dict[str, str]) -> list[str]:
    raw = params.get("symbols", "")
    symbols = [s for s in raw.split(",") if s]
    if not symbols:
        raise Refused(422, CODE_INVALID, "symbols is required")
    return sorted(set(symbols))


def _limit(params: dict[str, str]) -> int:
    raw = params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise Refused(422, CODE_INVALID, f"invalid limit {raw!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise Refused(422, CODE_INVALID, f"limit must be within 1..{MAX_LIMIT} (got {limit})")
    return limit


def time_param(params: dict[str, str], key: str) -> int | None:
    """Read an RFC 3339 query parameter as ns UTC (None when absent; 422 when malformed)."""
    raw = params.get(key)
    if raw is None:
        return None
    try:
        return wire.parse_time(raw)
    except ValueError:
        raise Refused(422, CODE_INVALID, f"invalid {key} {raw!r}") from None


def bars_page(market: Market, params: dict[str, str]) -> dict[str, Any]:
    """One page of ``GET /v2/stocks/bars``."""
    symbols = _symbols(params)
    timeframe = params.get("timeframe", "")
    served = market.tape.timeframe()
    if timeframe != served:
        raise Refused(
            422,
            CODE_INVALID,
            f"timeframe {timeframe!r} is not served by the fake (its bars are {served or 'none'})",
        )
    limit = _limit(params)
    start = time_param(params, "start")
    end = time_param(params, "end")
    now = market.now
    end = now if end is None else min(end, now)
    desc = params.get("sort", "asc") == "desc"
    items = []
    for symbol in symbols:
        bars = market.tape.by_symbol.get(symbol, [])
        lo = 0 if start is None else count_upto(bars, start - 1)
        hi = count_upto(bars, end)
        chosen = bars[lo:hi]
        items.extend(reversed(chosen) if desc else chosen)
    first = 0
    token = params.get("page_token")
    if token:
        try:
            key = wire.read_page_token(token)
        except ValueError:
            raise Refused(422, CODE_INVALID, f"invalid page_token {token!r}") from None
        first = next((k for k, b in enumerate(items) if (b.symbol, b.ts) == key), len(items))
    page = items[first : first + limit]
    out: dict[str, list[dict[str, Any]]] = {}
    for bar in page:
        out.setdefault(bar.symbol, []).append(wire.bar_json(bar))
    rest = items[first + limit : first + limit + 1]
    next_token = wire.page_token(rest[0].symbol, rest[0].ts) if rest else None
    return {"bars": out, "next_page_token": next_token, "currency": "USD"}


def latest_bars(market: Market, params: dict[str, str]) -> dict[str, Any]:
    """``GET /v2/stocks/bars/latest``: each symbol's newest bar at or before the clock."""
    out = {}
    for symbol in _symbols(params):
        bars = market.tape.by_symbol.get(symbol, [])
        k = count_upto(bars, market.now)
        if k:
            out[symbol] = wire.bar_json(bars[k - 1])
    return {"bars": out}
