"""A live run's journal as an incident: ``backstop replay RUN_DIR`` reads a live session like
any bot's logs and broker exports.

A live run (``backstop paper``) leaves ``journal.duckdb`` in its run directory. Read as an
incident:

- the runner's side (what the bot decided): each decision of a signal (``verdicts`` with
  source ``signal``, entries and exits) is a ``Signal`` carrying its price, levels and
  source id; one the runner approved and sent is followed by an ``OrderIntent`` with the
  quantity sent and the first order's client id. Exits the engine's own rules or the kill
  switch sent, and stop moves, are no decisions of the strategy's: their orders and fills
  are in the broker's side below;
- the broker's side (the truth): every order the runner placed is a ``BrokerOrder`` (legs
  name their entry as parent), every execution it booked a ``BrokerFill``;
- the reconciles (the ``reconcile`` table): a position desync is a ``BotPosition`` (what the
  mirror held) beside a ``BrokerPosition`` (what the broker held) at the reconcile's time,
  which the report lists as ``POSITION_DESYNC``; a fill a reconcile had to book late keeps
  its execution id and is reported with ``UNBOOKED_BROKER_FILLS`` when no decision of the
  strategy placed its order, while the fills the runner booked as they came are marked booked
  (``Incident.booked``); every other finding is a ``LogWarning`` of logger ``reconcile``;
- the starting equity is the run's ``initial_cash`` (an ``AccountSnapshot``), the zone UTC.

``live_profile`` rebuilds the risk profile the run traded under, which ``backstop replay``
judges a live run with unless ``--profile`` names another.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from backstop.engine.journal import JOURNAL_SCHEMA_VERSION, read_table
from backstop.engine.profile import RiskProfile
from backstop.errors import BackstopError, DataError
from backstop.replay.events import (
    AccountSnapshot,
    BotPosition,
    BrokerFill,
    BrokerOrder,
    BrokerPosition,
    Event,
    LogWarning,
    OrderIntent,
    Signal,
)
from backstop.replay.timeline import Incident, sort_events

JOURNAL_FILE = "journal.duckdb"
RUN_MARKER = "runner.json"  # what a live runner leaves beside its journal


def live_journal(path: Path) -> Path | None:
    """The journal of a live run at ``path`` (its run directory or its ``journal.duckdb``),
    None when ``path`` is neither."""
    if path.is_dir():
        journal = path / JOURNAL_FILE
        return journal if journal.is_file() and (path / RUN_MARKER).is_file() else None
    return path if path.is_file() and path.suffix == ".duckdb" else None


def _run(journal: Path) -> dict[str, Any]:
    run = read_table(journal, "run")
    row = run.row(0, named=True)
    version = int(row["schema_version"])
    if version != JOURNAL_SCHEMA_VERSION:
        raise DataError(
            f"journal schema version {version}; this backstop replays version "
            f"{JOURNAL_SCHEMA_VERSION} (a live run's reconciles came with it)",
            source=str(journal),
            column="schema_version",
        )
    if not str(row["label"]).startswith("live:"):
        raise DataError(
            f"a {row['label'] or 'backtest'} journal, not a live run's: replay reads what a "
            "live runner left (backstop paper --journal DIR)",
            source=str(journal),
            column="label",
        )
    return row


def live_profile(path: str | Path) -> RiskProfile:
    """The risk profile a live run traded under, as its journal records it."""
    journal = live_journal(Path(path))
    if journal is None:
        raise BackstopError(f"{path}: not a live run's directory or journal")
    row = _run(journal)
    settings = json.loads(row["profile_settings"])
    profile = RiskProfile(name=row["profile"], settings=tuple(sorted(settings.items())))
    if profile.content_hash() != row["profile_hash"]:
        # the hash covers the calendar too: a preset of that name holds it
        preset = RiskProfile.load(row["profile"])
        if preset.content_hash() != row["profile_hash"]:
            raise DataError(
                "the run's profile cannot be rebuilt from its journal (hash differs); "
                "name one with --profile",
                source=str(journal),
                column="profile_hash",
            )
        profile = preset
    return profile


def read_live_journal(path: str | Path) -> Incident:
    """A live run's journal (run directory or ``journal.duckdb``) as an ``Incident``."""
    journal = live_journal(Path(path))
    if journal is None:
        raise DataError("not a live run's directory or journal", source=str(path))
    run = _run(journal)
    src = journal.name
    orders = read_table(journal, "orders")
    ids = orders["order_id"].to_list()
    client = dict(zip(ids, orders["client_order_id"].to_list(), strict=True))
    events: list[Event] = []
    events += _decisions(read_table(journal, "verdicts"), client, src)
    events += _orders(orders, client, src)
    reconcile = read_table(journal, "reconcile")
    fills, booked = _fills(read_table(journal, "fills"), client, reconcile, src)
    events += fills
    events += _reconciles(reconcile, src)
    if events:
        cash = float(json.loads(run["config"])["initial_cash"])
        first = min(e.ts for e in events)
        events.insert(0, AccountSnapshot(ts=first, source=f"{src}:run", equity=cash, cash=cash))
    return Incident(
        name=f"live run {run['run_id']} ({run['label']}, {run['strategy']})",
        tz="UTC",
        events=sort_events(events),
        inputs=(str(journal),),
        booked=frozenset(booked),
    )


def _side(text: str) -> int:
    return 1 if text == "BUY" else -1


def _num(value: float | None) -> float | None:
    return None if value is None or value != value else float(value)


def _decisions(verdicts: pl.DataFrame, client: dict[int, str], src: str) -> list[Event]:
    out: list[Event] = []
    for k, v in enumerate(verdicts.iter_rows(named=True)):
        if v["source"] != "signal" or v["intent"] not in ("ENTRY", "EXIT"):
            continue
        where = f"{src}:verdicts[{k}]"
        path = v["intent"].lower()
        conviction = _num(v["conviction"])
        out.append(
            Signal(
                ts=v["ts"], source=where, symbol=v["symbol"], side=_side(v["side"]),
                price=_num(v["price"]), stop=_num(v["stop_price"]),
                target=_num(v["target_price"]), intent=path,
                source_id=None if v["source_id"] is None else str(v["source_id"]),
                strategy_id=v["strategy_id"],
                confidence=None if conviction is None else conviction / 100.0,
            )
        )  # fmt: skip
        if v["approved"] and v["order_id"] >= 0:
            out.append(
                OrderIntent(
                    ts=v["ts"], source=where, symbol=v["symbol"], side=_side(v["side"]),
                    path=path, qty=float(v["qty"]), order_id=client[v["order_id"]],
                    stop=_num(v["stop_price"]), target=_num(v["target_price"]),
                )
            )  # fmt: skip
    return out


def _orders(orders: pl.DataFrame, client: dict[int, str], src: str) -> list[Event]:
    out: list[Event] = []
    for k, o in enumerate(orders.iter_rows(named=True)):
        out.append(
            BrokerOrder(
                ts=o["created_ts"], source=f"{src}:orders[{k}]", order_id=o["client_order_id"],
                symbol=o["symbol"], side=_side(o["side"]), qty=float(o["qty"]),
                order_type=o["order_type"].lower(), status=o["status"].lower(),
                parent_id=client.get(o["parent_order_id"]), limit_price=_num(o["limit_price"]),
                stop_price=_num(o["stop_price"]), client_order_id=o["client_order_id"],
            )
        )  # fmt: skip
    return out


def _fills(
    fills: pl.DataFrame, client: dict[int, str], reconcile: pl.DataFrame, src: str
) -> tuple[list[Event], list[str]]:
    """The runner's booked executions; those a reconcile booked late keep the broker's
    execution id, the others are named by fill number and returned as booked on time."""
    late: dict[tuple[str, int, float, float], list[str]] = {}
    for r in reconcile.filter(pl.col("kind") == "LATE_FILL").iter_rows(named=True):
        key = (r["client_order_id"], r["fill_ts"], r["qty"], r["price"])
        late.setdefault(key, []).append(r["exec_id"])
    out: list[Event] = []
    booked: list[str] = []
    for k, f in enumerate(fills.iter_rows(named=True)):
        cid = client[f["order_id"]]
        found = late.get((cid, f["ts"], f["qty"], f["price"]))
        if found:
            exec_id = found.pop(0)
        else:
            exec_id = f"{cid}#{f['fill_id']}"
            booked.append(exec_id)
        out.append(
            BrokerFill(
                ts=f["ts"], source=f"{src}:fills[{k}]", symbol=f["symbol"],
                side=_side(f["side"]), qty=float(f["qty"]), price=float(f["price"]),
                order_id=cid, fee=float(f["fee"]), exec_id=exec_id,
            )
        )  # fmt: skip
    return out, booked


def _reconciles(reconcile: pl.DataFrame, src: str) -> list[Event]:
    out: list[Event] = []
    for k, r in enumerate(reconcile.iter_rows(named=True)):
        where = f"{src}:reconcile[{k}]"
        kind = r["kind"]
        if kind == "RECONCILED":
            continue
        if kind == "POSITION_DESYNC":
            out.append(BotPosition(ts=r["ts"], source=where, symbol=r["symbol"],
                                   qty=float(r["mirror_qty"])))  # fmt: skip
            out.append(BrokerPosition(ts=r["ts"], source=where, symbol=r["symbol"],
                                      qty=float(r["broker_qty"])))  # fmt: skip
        what = " ".join(str(r[c]) for c in ("symbol", "client_order_id", "exec_id") if r[c])
        out.append(
            LogWarning(ts=r["ts"], source=where, logger="reconcile",
                       message=f"reconcile {r['reconcile']}: {kind} {what}: {r['action']}")
        )  # fmt: skip
    return out
