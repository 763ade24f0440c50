"""Incident replay, ingestion half: rebuild what a bot did from what it left behind.

``load_incident`` reads a scenario folder (``incident.toml`` + inputs) or one file into an
``Incident``: a sorted timeline of typed events (signals, advisories, order intents, broker
orders and fills, positions, P&L, warnings) plus every line it could not read. The parsers
underneath read backstop's JSONL event log, other bots' text logs through TOML dialects,
Alpaca order exports and IBKR Flex/CSV executions; each reports ``file:line`` for what it
cannot read, raising in strict mode and recording a ``SkippedLine`` in tolerant mode; safe
mode, the default, raises for broker exports and order lines and skips the rest.
"""

from backstop.replay.alpaca import read_alpaca_orders
from backstop.replay.dialect import Dialect, Pattern, load_dialect, parse_dialect, shipped_dialects
from backstop.replay.events import (
    EVENT_TYPES,
    KINDS,
    AccountSnapshot,
    Advisory,
    BotPosition,
    BrokerFill,
    BrokerOrder,
    BrokerPosition,
    Event,
    LogWarning,
    OrderIntent,
    PnlRecord,
    Signal,
)
from backstop.replay.ibkr import read_ibkr_csv, read_ibkr_flex
from backstop.replay.issues import Mode
from backstop.replay.jsonl import SCHEMA, VERSION, read_jsonl, write_jsonl
from backstop.replay.load import detect_format, load_incident, read_input
from backstop.replay.scenario import InputSpec, ScenarioSpec, read_scenario
from backstop.replay.textlog import parse_text_log
from backstop.replay.timeline import (
    Incident,
    Inference,
    OrderTrail,
    ParseWarning,
    SkippedLine,
    describe,
    merge,
)

__all__ = [
    "EVENT_TYPES",
    "KINDS",
    "SCHEMA",
    "VERSION",
    "AccountSnapshot",
    "Advisory",
    "BotPosition",
    "BrokerFill",
    "BrokerOrder",
    "BrokerPosition",
    "Dialect",
    "Event",
    "Incident",
    "Inference",
    "InputSpec",
    "LogWarning",
    "Mode",
    "OrderIntent",
    "OrderTrail",
    "ParseWarning",
    "Pattern",
    "PnlRecord",
    "ScenarioSpec",
    "Signal",
    "SkippedLine",
    "describe",
    "detect_format",
    "load_dialect",
    "load_incident",
    "merge",
    "parse_dialect",
    "parse_text_log",
    "read_alpaca_orders",
    "read_ibkr_csv",
    "read_ibkr_flex",
    "read_input",
    "read_jsonl",
    "read_scenario",
    "shipped_dialects",
    "write_jsonl",
]
