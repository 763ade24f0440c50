"""Log dialects: TOML files that say how to read one bot's text log into timeline events.

A dialect names the log's time zone and time format, a ``line`` regex that splits a line into
time, level, logger and message, the ``[[pattern]]`` rules that turn messages into events and
the ``[[ignore]]`` rules for chatter. DIALECTS.md beside this file is the format's reference;
``dialects/`` holds the shipped ones. A dialect is validated when it is loaded (unknown keys,
bad regexes, unknown event kinds, groups that name no field, a required field no rule can
fill): a broken dialect is a ``ConfigError`` naming the file and the key, before any line of
any log is read.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backstop.errors import ConfigError
from backstop.replay.events import KINDS
from backstop.replay.issues import ORDER_KINDS, read_text
from backstop.replay.regexes import literal_prefix
from backstop.replay.times import LocalZone, check_time_regex, time_format_regex
from backstop.replay.values import (
    POSITION_KINDS,
    SPECS,
    FieldError,
    apply_side_words,
    field_names,
)

ErrorFactory = Callable[[str, str], ConfigError]
"""Builds the ConfigError for a key and a problem, naming the file being validated."""

DIALECT_DIR = Path(__file__).parent / "dialects"
"""Folder of the shipped dialects (``<name>.toml``)."""

_TOP_KEYS = frozenset({"dialect", "pattern", "ignore", "sides"})
_MIN_PREFIX = 4  # shorter literal starts of an order pattern say too little to recognise it
_DIALECT_KEYS = frozenset(
    {"name", "description", "timezone", "line", "time_format", "time_regex", "sticky_symbol"}
    | {"symbol"}
)
_PATTERN_KEYS = frozenset({"name", "event", "regex", "set", "level", "kv", "description"})
_IGNORE_KEYS = frozenset({"regex", "level", "name", "description"})
_LINE_GROUPS = frozenset({"time", "level", "logger", "message"})


@dataclass(frozen=True, slots=True)
class Pattern:
    """One rule: messages matching ``regex`` (at one of ``levels``) become ``event`` events.

    Field values come from the line's groups, then ``constants`` (``[pattern.set]``), then the
    pattern's named groups, then (``kv``) the ``key=value`` pairs after the match.
    """

    name: str
    event: str
    regex: re.Pattern[str]
    constants: Mapping[str, object]
    levels: frozenset[str] | None
    kv: bool


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    """Lines to ignore on purpose: those ``regex`` finds, or (with ``levels``) those logged at
    one of ``levels`` (and, if a regex is given too, found by it)."""

    regex: re.Pattern[str] | None
    levels: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Dialect:
    """A validated dialect: how to split, time and interpret every line of one bot's log."""

    name: str
    path: str
    timezone: str
    line: re.Pattern[str]
    time: re.Pattern[str]
    patterns: tuple[Pattern, ...]
    ignore: tuple[IgnoreRule, ...]
    sticky_symbol: bool = False
    symbol: str | None = None
    description: str = ""
    sides: Mapping[str, int] = dataclasses.field(default_factory=dict)
    order_prefixes: tuple[str, ...] = ()


def shipped_dialects() -> dict[str, Path]:
    """Return the shipped dialect files by name, sorted by name."""
    return {p.stem: p for p in sorted(DIALECT_DIR.glob("*.toml"))}


def load_dialect(name_or_path: str | os.PathLike[str]) -> Dialect:
    """Load and validate a dialect: a shipped one by name, or a ``.toml`` file by path."""
    text = os.fspath(name_or_path)
    shipped = shipped_dialects()
    if text in shipped:
        path = shipped[text]
    elif text.endswith(".toml") and Path(text).is_file():
        path = Path(text)
    else:
        raise ConfigError(
            "dialect", f"no dialect {text!r}: shipped are {sorted(shipped)}, or give a .toml path"
        )
    try:
        text = read_text(path)
    except ValueError as exc:
        raise ConfigError("dialect", str(exc), source=str(path)) from None
    return parse_dialect(text, str(path))


def parse_dialect(text: str, source: str) -> Dialect:
    """Validate the TOML ``text`` of a dialect; errors name ``source`` and the key."""

    def err(key: str, problem: str) -> ConfigError:
        return ConfigError(key, problem, source=source)

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise err("(toml)", str(exc)) from None
    _no_unknown(doc, _TOP_KEYS, "", err)
    head = doc.get("dialect")
    if not isinstance(head, dict):
        raise err("dialect", "missing [dialect] table")
    _no_unknown(head, _DIALECT_KEYS, "dialect.", err)
    name = _string(head, "name", "dialect.", err)
    timezone = _string(head, "timezone", "dialect.", err)
    try:
        LocalZone(timezone)
    except ValueError as exc:
        raise err("dialect.timezone", str(exc)) from None
    line = _regex(_string(head, "line", "dialect.", err), "dialect.line", err)
    if "time" not in line.groupindex:
        raise err("dialect.line", "needs a (?P<time>...) group")
    line_groups = set(line.groupindex)
    unknown_groups = line_groups - _LINE_GROUPS - {"symbol"}
    if unknown_groups:
        raise err("dialect.line", f"unknown groups {sorted(unknown_groups)}")
    time = _time(head, err)
    sticky = head.get("sticky_symbol", False)
    if not isinstance(sticky, bool):
        raise err("dialect.sticky_symbol", "must be true or false")
    symbol = head.get("symbol")
    if symbol is not None and (not isinstance(symbol, str) or not symbol):
        raise err("dialect.symbol", "must be a non-empty string")
    ignore = _ignores(doc.get("ignore", []), "level" in line_groups, err)
    sides = _sides(doc.get("sides", {}), err)
    raw_patterns = doc.get("pattern", [])
    if not isinstance(raw_patterns, list) or not raw_patterns:
        raise err("pattern", "needs at least one [[pattern]] table")
    patterns: list[Pattern] = []
    for i, raw in enumerate(raw_patterns):
        fallback_symbol = sticky or symbol is not None or "symbol" in line_groups
        patterns.append(_pattern(raw, i, line_groups, fallback_symbol, sides, err))
    names = [p.name for p in patterns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise err("pattern.name", f"duplicate pattern names {dupes}")
    return Dialect(
        name=name,
        path=source,
        timezone=timezone,
        line=line,
        time=time,
        patterns=tuple(patterns),
        ignore=ignore,
        sticky_symbol=sticky,
        symbol=symbol,
        description=str(head.get("description", "")),
        sides=sides,
        order_prefixes=tuple(
            sorted(
                {
                    prefix
                    for p in patterns
                    if p.event in ORDER_KINDS
                    and len(prefix := literal_prefix(p.regex).strip()) >= _MIN_PREFIX
                }
            )
        ),
    )


def pattern_fields(event: str) -> frozenset[str]:
    """The names a pattern of ``event`` may fill: the event's fields, plus ``side`` for a
    position (its sign as a word, see ``[sides]``)."""
    fields = field_names(event)
    return fields | {"side"} if event in POSITION_KINDS else fields


def _sides(raw: object, err: ErrorFactory) -> dict[str, int]:
    """``[sides]``: a dialect's own side words, WORD = 1 (buy/long), -1 (sell/short), 0 (flat)."""
    if not isinstance(raw, dict):
        raise err("sides", "must be a table of WORD = 1, -1 or 0")
    out: dict[str, int] = {}
    for word, sign in raw.items():
        key = f"sides.{word}"
        if not word.strip():
            raise err(key, "a side word must not be blank")
        if isinstance(sign, bool) or sign not in (1, -1, 0) or not isinstance(sign, int):
            raise err(key, f"must be 1 (buy/long), -1 (sell/short) or 0 (flat), got {sign!r}")
        folded = word.strip().lower()
        if folded in out:
            raise err(key, f"repeats the side word {folded!r} (words are read case-blind)")
        out[folded] = sign
    return out


def _no_unknown(
    table: Mapping[str, Any], allowed: frozenset[str], prefix: str, err: ErrorFactory
) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise err(f"{prefix}{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _string(table: Mapping[str, Any], key: str, prefix: str, err: ErrorFactory) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise err(f"{prefix}{key}", "required, a non-empty string")
    return value


def _regex(text: str, key: str, err: ErrorFactory) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise err(key, f"bad regex: {exc}") from None


def _time(head: Mapping[str, Any], err: ErrorFactory) -> re.Pattern[str]:
    has_format, has_regex = "time_format" in head, "time_regex" in head
    if has_format == has_regex:
        raise err("dialect.time_format", "give exactly one of time_format and time_regex")
    key = "dialect.time_format" if has_format else "dialect.time_regex"
    text = _string(head, key.split(".")[1], "dialect.", err)
    if has_format:
        try:
            text = time_format_regex(text)
        except ValueError as exc:
            raise err(key, str(exc)) from None
    pattern = _regex(text, key, err)
    try:
        check_time_regex(pattern)
    except ValueError as exc:
        raise err(key, str(exc)) from None
    return pattern


def _ignores(raw: object, has_level: bool, err: ErrorFactory) -> tuple[IgnoreRule, ...]:
    if not isinstance(raw, list):
        raise err("ignore", "must be [[ignore]] tables or a list of regex strings")
    out = []
    for i, item in enumerate(raw):
        key = f"ignore[{i}]"
        if isinstance(item, str):
            out.append(IgnoreRule(_regex(item, key, err)))
            continue
        if not isinstance(item, dict):
            raise err(key, "must be a table with a regex and/or level, or a regex string")
        _no_unknown(item, _IGNORE_KEYS, f"{key}.", err)
        levels = _levels(item, key, has_level, err)
        if "regex" not in item and levels is None:
            raise err(f"{key}.regex", "an ignore rule needs a regex, a level, or both")
        regex = None
        if "regex" in item:
            regex = _regex(_string(item, "regex", f"{key}.", err), f"{key}.regex", err)
        out.append(IgnoreRule(regex, levels))
    return tuple(out)


def _levels(
    table: Mapping[str, Any], key: str, has_level: bool, err: ErrorFactory
) -> frozenset[str] | None:
    levels = table.get("level")
    if levels is None:
        return None
    if isinstance(levels, str):
        levels = [levels]
    if not isinstance(levels, list) or not levels or not all(isinstance(x, str) for x in levels):
        raise err(f"{key}.level", "must be a level name or a list of them")
    if not has_level:
        raise err(f"{key}.level", "the dialect's line regex has no (?P<level>...) group")
    return frozenset(levels)


def _pattern(
    raw: object,
    i: int,
    line_groups: set[str],
    fallback_symbol: bool,
    sides: Mapping[str, int],
    err: ErrorFactory,
) -> Pattern:
    key = f"pattern[{i}]"
    if not isinstance(raw, dict):
        raise err(key, "must be a table")
    if isinstance(raw.get("name"), str):
        key = f"pattern[{i}] ({raw['name']})"
    _no_unknown(raw, _PATTERN_KEYS, f"{key}.", err)
    name = _string(raw, "name", f"{key}.", err)
    event = _string(raw, "event", f"{key}.", err)
    if event not in KINDS:
        raise err(f"{key}.event", f"unknown event kind {event!r} (known: {', '.join(KINDS)})")
    fields = pattern_fields(event)
    regex = _regex(_string(raw, "regex", f"{key}.", err), f"{key}.regex", err)
    stray = sorted(set(regex.groupindex) - fields)
    if stray:
        raise err(f"{key}.regex", f"groups {stray} are not fields of {event!r}: {sorted(fields)}")
    constants = raw.get("set", {})
    if not isinstance(constants, dict):
        raise err(f"{key}.set", "must be a table of field = value")
    for field, value in constants.items():
        if field not in fields:
            raise err(f"{key}.set.{field}", f"not a field of {event!r}: {sorted(fields)}")
        _check_constant(event, field, value, sides, f"{key}.set.{field}", err)
    levels = _levels(raw, key, "level" in line_groups, err)
    kv = raw.get("kv", False)
    if not isinstance(kv, bool):
        raise err(f"{key}.kv", "must be true or false")
    if not kv:
        provided = set(regex.groupindex) | set(constants) | (line_groups & fields)
        if fallback_symbol:
            provided.add("symbol")
        if event in POSITION_KINDS and "side" in provided:
            provided.add("qty")  # FLAT needs no quantity; LONG/SHORT without one is a line error
        missing = [s.name for s in SPECS[event] if s.required and s.name not in provided]
        if missing:
            raise err(f"{key}.regex", f"no group or [set] value for required fields {missing}")
    return Pattern(
        name=name,
        event=event,
        regex=regex,
        constants=dict(constants),
        levels=levels,
        kv=kv,
    )


def _check_constant(
    event: str, field: str, value: object, sides: Mapping[str, int], key: str, err: ErrorFactory
) -> None:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise err(key, f"must be a string or a number, got {value!r}")
    if field == "side":
        try:
            probe = {"side": value, "qty": 0 if event in POSITION_KINDS else 1}
            apply_side_words(event, probe, sides)
        except FieldError as exc:
            if exc.field == "side":
                raise err(key, exc.problem) from None
        if event in POSITION_KINDS:
            return
        value = sides.get(value.strip().lower(), value) if isinstance(value, str) else value
    spec = next(s for s in SPECS[event] if s.name == field)
    try:
        spec.convert(value)
    except ValueError as exc:
        raise err(key, str(exc)) from None


__all__ = [
    "DIALECT_DIR",
    "Dialect",
    "IgnoreRule",
    "Pattern",
    "load_dialect",
    "parse_dialect",
    "pattern_fields",
    "shipped_dialects",
]
