"""Read a bot's text log through a dialect into an incident timeline.

Per line: blank lines, a ``# dialect: NAME`` hint on line 1 and lines an ``[[ignore]]`` rule
matches are ignored (and counted). Every other line must match the dialect's ``line`` regex
(else it is truncated or foreign) and one ``[[pattern]]`` (else it is an unknown message);
its time must read in the dialect's zone and its fields must convert. Any failure is a
``DataError`` naming ``file:line`` in strict mode and a ``SkippedLine`` in tolerant mode; in
safe mode (the default) it is an error when the line holds an order or a fill (a pattern of
that kind matched, or the unreadable line names one, see ``issues.mentions_order``), else a
skip. A timestamp earlier than an earlier line's is an error in strict mode; the other modes
keep the event, sort it into place and record a ``ParseWarning``.

Sides: a position pattern may give its sign as a word (``SHORT 2`` is -2, ``FLAT`` is 0) and
a dialect's ``[sides]`` words are read for orders too (``values.apply_side_words``).

Symbols: an event without a symbol of its own takes, in order, the last symbol the log named
(dialects with ``sticky_symbol``: one-instrument bots that name it only now and then), the
caller's ``symbol`` and the dialect's ``symbol``; with none of them it is an error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from backstop.errors import DataError
from backstop.replay.dialect import Dialect, IgnoreRule, Pattern, load_dialect, pattern_fields
from backstop.replay.issues import ORDER_KINDS, LineIssues, Mode, mentions_order, read_text
from backstop.replay.regexes import leading_char
from backstop.replay.timeline import Incident, sort_events
from backstop.replay.times import LocalZone, TimeReader
from backstop.replay.values import (
    POSITION_KINDS,
    FieldError,
    apply_side_words,
    build_event,
    is_none,
)

HINT = re.compile(r"^\s*#\s*dialect\s*:\s*(?P<name>\S+)\s*$")
"""A first line ``# dialect: NAME`` names the dialect of the log it heads."""

_KV = re.compile(r"""(?P<key>\w+)=(?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;]*)""")


def parse_text_log(
    path: str | os.PathLike[str],
    dialect: Dialect | str,
    mode: Mode = "safe",
    *,
    symbol: str | None = None,
    timezone: str | None = None,
) -> Incident:
    """Read the text log at ``path`` with ``dialect`` (a ``Dialect``, a name or a path).

    ``symbol`` is the default symbol for events that name none; ``timezone`` overrides the
    dialect's zone for a bot deployed elsewhere.
    """
    source = os.fspath(path)
    if not isinstance(dialect, Dialect):
        dialect = load_dialect(dialect)
    try:
        text = read_text(source)
    except ValueError as exc:
        raise DataError(str(exc), source=source) from None
    tz = timezone or dialect.timezone
    try:
        zone = LocalZone(tz)
    except ValueError as exc:
        raise DataError(str(exc), source=source) from None
    return _parse(text.splitlines(), source, dialect, mode, symbol, zone)


def _parse(
    lines: list[str],
    source: str,
    dialect: Dialect,
    mode: Mode,
    default_symbol: str | None,
    zone: LocalZone,
) -> Incident:
    issues = LineIssues(source, mode, zone)
    read_time = TimeReader(dialect.time, zone).read
    line_match = dialect.line.match
    has_message = "message" in dialect.line.groupindex
    raw_ignores = [
        r.regex.search for r in dialect.ignore if r.levels is None and r.regex is not None
    ]
    level_ignores = [rule for rule in dialect.ignore if rule.levels is not None]
    always, by_char = _buckets(dialect)
    line_groups = set(dialect.line.groupindex)
    line_keys = {p.name: tuple(line_groups & pattern_fields(p.event)) for p in dialect.patterns}
    fields_of = {p.name: pattern_fields(p.event) for p in dialect.patterns}
    sides = dialect.sides
    prefixes = dialect.order_prefixes
    fallback = default_symbol or dialect.symbol
    sticky = dialect.sticky_symbol
    last_symbol: str | None = None
    prefix = f"{source}:"
    events = []
    ignored = 0
    for row, line in enumerate(lines, 1):
        if not line or line.isspace() or (row == 1 and HINT.match(line)):
            ignored += 1
            continue
        if _any(raw_ignores, line):
            ignored += 1
            continue
        m = line_match(line)
        if m is None:
            issues.fail(
                f"line does not match the {dialect.name} line format (truncated or foreign)",
                row=row,
                text=line,
                holds_order=issues.mode == "safe" and mentions_order(line, prefixes),
            )
            continue
        groups = m.groupdict()
        message = (groups["message"] if has_message else line) or ""
        level = groups.get("level")
        if level_ignores and _level_ignored(level_ignores, level, line):
            ignored += 1
            continue
        for pattern, search in by_char.get(message[:1], always):
            if pattern.levels is not None and level not in pattern.levels:
                continue
            pm = search(message)
            if pm is not None:
                break
        else:
            issues.fail(
                f"unknown message: no {dialect.name} pattern matches",
                row=row,
                text=line,
                holds_order=issues.mode == "safe" and mentions_order(message, prefixes),
            )
            continue
        try:
            ts = read_time(groups["time"], issues.last_ns)
        except ValueError as exc:
            issues.fail(
                str(exc),
                row=row,
                text=line,
                column="time",
                holds_order=pattern.event in ORDER_KINDS,
            )
            continue
        values: dict[str, object] = {k: groups[k] for k in line_keys[pattern.name]}
        values.update(pattern.constants)
        for key, value in pm.groupdict().items():
            if value is not None:
                values[key] = value
        if pattern.kv:
            values.update(_pairs(message[pm.end() :], fields_of[pattern.name]))
        named = values.get("symbol")
        if is_none(named):
            named = None
            if "symbol" in fields_of[pattern.name]:
                values["symbol"] = (last_symbol if sticky else None) or fallback
        try:
            if "side" in values and (sides or pattern.event in POSITION_KINDS):
                values = apply_side_words(pattern.event, values, sides)
            event = build_event(pattern.event, ts, prefix + str(row), values)
        except FieldError as exc:
            problem = exc.problem
            if exc.field == "symbol" and problem == "missing":
                problem = "missing: the line names no symbol and no default symbol is set"
            sym = values.get("symbol")
            issues.fail(
                f"{pattern.name}: {problem}",
                row=row,
                text=line,
                column=exc.field,
                symbol=sym if isinstance(sym, str) else None,
                holds_order=pattern.event in ORDER_KINDS,
            )
            continue
        if named is not None:
            last_symbol = getattr(event, "symbol", None)
        issues.check_order(ts, row, line)
        events.append(event)
    return Incident(
        name=Path(source).stem,
        tz=zone.name,
        events=sort_events(events) if issues.warnings else tuple(events),
        skipped=tuple(issues.skipped),
        warnings=tuple(issues.warnings),
        ignored=ignored,
        inputs=(source,),
    )


def _any(searches: Sequence[Callable[[str], object]], line: str) -> bool:
    # a plain loop, not any(<generator>): this runs for every line and the generator costs
    for search in searches:  # noqa: SIM110
        if search(line) is not None:
            return True
    return False


def _level_ignored(rules: list[IgnoreRule], level: str | None, line: str) -> bool:
    for rule in rules:
        if level in (rule.levels or ()) and (rule.regex is None or rule.regex.search(line)):
            return True
    return False


Candidates = list[tuple[Pattern, Callable[[str], "re.Match[str] | None"]]]


def _buckets(dialect: Dialect) -> tuple[Candidates, dict[str, Candidates]]:
    """Patterns to try per first character of a message, in dialect order.

    A pattern anchored on a literal first character can only match messages starting with it;
    the others are tried for every message. Order is kept, so the first match still wins.
    """
    firsts = [(p, leading_char(p.regex)) for p in dialect.patterns]
    always: Candidates = [(p, p.regex.search) for p, c in firsts if c is None]
    by_char: dict[str, Candidates] = {}
    for char in {c for _, c in firsts if c is not None}:
        by_char[char] = [(p, p.regex.search) for p, c in firsts if c is None or c == char]
    return always, by_char


def _pairs(text: str, fields: frozenset[str]) -> dict[str, str]:
    """The ``key=value`` pairs of ``text`` whose key is a field (others are context)."""
    out: dict[str, str] = {}
    for m in _KV.finditer(text):
        key = m.group("key")
        if key in fields:
            value = m.group("value")
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            out[key] = value
    return out


def count_matches(lines: list[str], dialect: Dialect) -> int:
    """Count lines a dialect recognises (ignored or matched): how ``load`` picks a dialect."""
    has_message = "message" in dialect.line.groupindex
    raw_ignores = [
        r.regex.search for r in dialect.ignore if r.levels is None and r.regex is not None
    ]
    level_ignores = [rule for rule in dialect.ignore if rule.levels is not None]
    hits = 0
    for line in lines:
        if _any(raw_ignores, line):
            hits += 1
            continue
        m = dialect.line.match(line)
        if m is None:
            continue
        message = (m.group("message") if has_message else line) or ""
        level = m.groupdict().get("level")
        if _level_ignored(level_ignores, level, line) or any(
            (p.levels is None or level in p.levels) and p.regex.search(message)
            for p in dialect.patterns
        ):
            hits += 1
    return hits
