"""``backstop data fetch``: a broker's historical bars into a Parquet file and/or a DuckDB
cache (``backstop.runners.fetch`` does the work; ``register(sub)`` adds the command)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from backstop.errors import ConfigError

_NAMES = ("--symbols", "--timeframe", "--start", "--end", "--out", "--cache")


def cmd_fetch(args: argparse.Namespace) -> int:
    """Fetch the bars, write them where asked, print what came (every empty symbol named)."""
    from backstop.cli_live import quiet_ib_async
    from backstop.runners.fetch import Gateway, fetch_bars, iso

    quiet_ib_async()

    if not args.out and not args.cache:
        raise ConfigError("--out", "give --out FILE.parquet|DIR and/or --cache FILE.duckdb")
    result = fetch_bars(
        args.broker,
        args.symbols,
        args.timeframe,
        args.start,
        args.end,
        out=args.out,
        cache=args.cache,
        force=args.force,
        names=_NAMES,
        gateway=Gateway(args.host, args.port, args.client_id),
    )
    if args.json:
        print(json.dumps(result.as_dict(), sort_keys=True))
        return 0
    print(
        f"fetched {result.bars.height:,} {result.timeframe} bars of {len(result.counts)} "
        f"symbol(s) from {result.broker}, {iso(result.start_ns)} .. {iso(result.end_ns)}"
    )
    width = max(len(s) for s in result.counts)
    for symbol, n in result.counts.items():
        if n == 0:
            print(f"  {symbol:<{width}}  no bars: {result.broker} has none in this range")
            continue
        ts = result.bars.filter(result.bars["symbol"] == symbol)["ts"]
        print(f"  {symbol:<{width}}  {n:>10,} bars  {iso(int(ts.min()))} .. {iso(int(ts.max()))}")
    for path in result.out:
        print(f"wrote {path}")
    if result.cache is not None:
        print(
            f"cache {result.cache}: {result.cache_new:,} new bars, "
            f"{result.bars.height - result.cache_new:,} already held (replaced); "
            f"table fetched_bars holds {result.cache_total:,}"
        )
    return 0


def register(sub: Any) -> None:
    """Add ``data fetch`` to the sub-command parsers ``sub``."""
    data = sub.add_parser("data", help="market data: fetch a broker's historical bars")
    inner = data.add_subparsers(dest="data_command", required=True)  # _Parser, as `data`
    fetch = inner.add_parser("fetch", help="a broker's historical bars into Parquet / DuckDB")
    fetch.add_argument(
        "--broker",
        required=True,
        metavar="BROKER",
        help="alpaca (keys from APCA_API_KEY_ID / APCA_API_SECRET_KEY), ibkr (a TWS or IB "
        "Gateway at --host/--port), or alpaca-fake / ibkr-fake (loopback fakes on the bundled "
        "sample, no keys)",
    )
    fetch.add_argument("--symbols", required=True, help="comma-separated, e.g. AAPL,MSFT")
    fetch.add_argument("--timeframe", required=True, help="bar size: 1Min, 5Min, 1Hour, 1Day...")
    fetch.add_argument(
        "--start", required=True, help="ISO date or datetime (no zone: UTC), inclusive"
    )
    fetch.add_argument(
        "--end", required=True, help="ISO date (that whole day) or datetime, inclusive"
    )
    fetch.add_argument(
        "--out", help="a .parquet file, or a folder (one SYMBOL_TIMEFRAME.parquet per symbol)"
    )
    fetch.add_argument(
        "--cache", help="a .duckdb file: bars upserted into table fetched_bars (no duplicates)"
    )
    fetch.add_argument("--host", default="127.0.0.1", help="ibkr: the gateway's host")
    fetch.add_argument(
        "--port", type=int, default=4002, help="ibkr: the gateway's API port (default 4002)"
    )
    fetch.add_argument(
        "--client-id",
        type=int,
        default=90,
        help="ibkr: the API client id to connect as, one no running runner uses (default 90)",
    )
    fetch.add_argument("--force", action="store_true", help="replace existing --out files")
    fetch.add_argument("--json", action="store_true", help="print one JSON object")
    fetch.set_defaults(func=cmd_fetch)
