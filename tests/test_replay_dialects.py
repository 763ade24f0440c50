"""Dialect files are validated on load: every mistake is a ConfigError naming file and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backstop.errors import ConfigError
from backstop.replay import load_dialect, parse_dialect, shipped_dialects
from backstop.replay.regexes import leading_char

HEAD = """
[dialect]
name = "t"
timezone = "UTC"
line = '^(?P<time>\\S+ \\S+) (?P<level>[A-Z]+) (?P<message>.*)$'
time_format = "%Y-%m-%d %H:%M:%S,%f"
"""
PATTERN = """
[[pattern]]
name = "sig"
event = "signal"
regex = '^signal (?P<symbol>\\w+) (?P<side>\\w+)'
"""


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_dialect(text, "d.toml")
    return str(info.value)


def test_shipped_dialects_load() -> None:
    assert sorted(shipped_dialects()) == ["magellan", "mytrader", "pylogging_kv"]
    for name in shipped_dialects():
        dialect = load_dialect(name)
        assert dialect.name == name
        assert dialect.patterns


def test_a_minimal_dialect_loads() -> None:
    dialect = parse_dialect(HEAD + PATTERN, "d.toml")
    assert [p.name for p in dialect.patterns] == ["sig"]
    assert dialect.sticky_symbol is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEAD + "colour = 'red'\n" + PATTERN, "d.toml: dialect.colour: unknown key"),
        (HEAD + PATTERN + "flavour = 1\n", "d.toml: pattern[0] (sig).flavour: unknown key"),
        (
            HEAD + PATTERN.replace("(?P<side>\\w+)", "(?P<side>\\w+"),
            "d.toml: pattern[0] (sig).regex: bad regex: missing ), unterminated subpattern",
        ),
        (
            HEAD + PATTERN.replace('"signal"', '"signals"'),
            "d.toml: pattern[0] (sig).event: unknown event kind 'signals'",
        ),
        (
            HEAD + PATTERN.replace("(?P<side>", "(?P<sid>"),
            "d.toml: pattern[0] (sig).regex: groups ['sid'] are not fields of 'signal'",
        ),
        (
            HEAD + PATTERN.replace(" (?P<side>\\w+)", ""),
            "d.toml: pattern[0] (sig).regex: no group or [set] value for required fields ['side']",
        ),
        (
            HEAD + PATTERN + "[pattern.set]\nside = 'up'\n",
            "d.toml: pattern[0] (sig).set.side: not a side: 'up'",
        ),
        (
            HEAD + PATTERN + "[pattern.set]\nverdict = 'WAIT'\n",
            "d.toml: pattern[0] (sig).set.verdict: not a field of 'signal'",
        ),
        (
            HEAD.replace("UTC", "Mars/Olympus") + PATTERN,
            "d.toml: dialect.timezone: unknown time zone 'Mars/Olympus'",
        ),
        (
            HEAD.replace("%f", "%Q") + PATTERN,
            "d.toml: dialect.time_format: unsupported strptime directive %Q",
        ),
        (
            HEAD + "time_regex = '(?P<year>\\d{4})'\n" + PATTERN,
            "d.toml: dialect.time_format: give exactly one of time_format and time_regex",
        ),
        (
            HEAD.replace("(?P<time>", "(?P<when>") + PATTERN,
            "d.toml: dialect.line: needs a (?P<time>...) group",
        ),
        (HEAD, "d.toml: pattern: needs at least one [[pattern]] table"),
        (HEAD + PATTERN + PATTERN, "d.toml: pattern.name: duplicate pattern names ['sig']"),
        (
            HEAD.replace(" (?P<level>[A-Z]+)", "") + PATTERN + "level = 'INFO'\n",
            "d.toml: pattern[0] (sig).level: the dialect's line regex has no (?P<level>...) group",
        ),
        (HEAD + "[[ignore]]\nname = 'x'\n" + PATTERN, "d.toml: ignore[0].regex: an ignore rule"),
        ("[dialect\n", "d.toml: (toml): "),
    ],
)
def test_dialect_mistakes_name_the_file_and_key(text: str, message: str) -> None:
    assert error_of(text).startswith(message)


def test_unknown_dialect_name() -> None:
    with pytest.raises(ConfigError, match="no dialect 'nope'"):
        load_dialect("nope")


def test_dialect_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(HEAD + PATTERN, encoding="utf-8")
    assert load_dialect(str(path)).path == str(path)


@pytest.mark.parametrize(
    ("regex", "char"),
    [
        ("^Current position", "C"),
        ("^\\[STUB\\] Would", "["),
        ("^_place_exit_order", "_"),
        ("^(?:Exit|Entry)", None),
        ("^a|b", None),  # the b branch is not anchored
        ("^a?b", None),
        ("^\\d+", None),
        ("HYBRID EXIT", None),
        ("^[ab]c|d]", None),
        ("^x(a|b)", "x"),
    ],
)
def test_leading_char_only_claims_what_every_match_starts_with(
    regex: str, char: str | None
) -> None:
    assert leading_char(re.compile(regex)) == char
