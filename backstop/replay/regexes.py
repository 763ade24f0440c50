"""Regex helpers that let a dialect skip work without changing what it matches.

A text log is read line by line against a dialect's ignore rules and patterns in order; for a
100,000-line log most of those searches fail. ``leading_char`` finds the one character a
``^``-anchored pattern's match must start with, so the parser only tries the patterns that
can match a message's first character (in their original order: the first match still wins).
"""

from __future__ import annotations

import re

_SPECIAL = frozenset(".^$*+?{}[]\\|()")
_OPTIONAL = frozenset("*?{")


def _top_level_alternation(source: str) -> bool:
    depth = 0
    in_class = False
    i = 0
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if source[i + 1 : i + 2] == "]":  # "[]...]" holds a literal "]"
                i += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            return True
        i += 1
    return False


def leading_char(pattern: re.Pattern[str]) -> str | None:
    """The character every match of ``pattern`` (searched, no flags) starts with, if fixed.

    Only a pattern that starts with ``^`` and then a literal character (not optional) has one;
    anything else (flags, groups, classes, a top-level ``|``) gives ``None``: try it always.
    """
    source = pattern.pattern
    if pattern.flags & ~re.UNICODE or not source.startswith("^") or len(source) < 2:
        return None
    if _top_level_alternation(source):
        return None
    ch, rest = source[1], source[2:]
    if ch == "\\":
        if len(source) < 3 or source[2].isalnum():  # \d, \s, \w, \A: classes, not literals
            return None
        ch, rest = source[2], source[3:]
    elif ch in _SPECIAL:
        return None
    if rest[:1] in _OPTIONAL:
        return None
    return ch


def literal_prefix(pattern: re.Pattern[str]) -> str:
    """The literal text every match of ``pattern`` starts with ("" when it has none).

    Read from the start (after ``^``) up to the first regex construct; a character made
    optional by the quantifier after it is left out. Safe mode uses it to recognise a
    truncated line that began like an order pattern.
    """
    source = pattern.pattern
    if pattern.flags & ~re.UNICODE or _top_level_alternation(source):
        return ""
    i = 1 if source.startswith("^") else 0
    out: list[str] = []
    while i < len(source):
        ch = source[i]
        step = 1
        if ch == "\\":
            if i + 1 >= len(source) or source[i + 1].isalnum():
                break
            ch, step = source[i + 1], 2
        elif ch in _SPECIAL:
            break
        after = source[i + step : i + step + 1]
        if after in _OPTIONAL:
            break
        out.append(ch)
        if after == "+":
            break
        i += step
    return "".join(out)
