"""Dialect files are validated on load: every mistake is a ConfigError naming file and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backstop.errors import ConfigError
from backstop.replay import load_dialect, parse_dialect, shipped_dialects
from backstop.replay.issues import mentions_order
from backstop.replay.regexes import leading_char, literal_prefix

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


# ---- side words (DIALECTS.md "Side words") -------------------------------------------------

DOCS = Path(__file__).resolve().parents[1] / "backstop" / "replay" / "DIALECTS.md"


def docs_example() -> tuple[str, str]:
    """The dialect and the log of DIALECTS.md's side-words example, as written there."""
    text = DOCS.read_text(encoding="utf-8").split("### Side words")[1]
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", text, flags=re.M | re.S)
    return blocks[0][1], blocks[1][1]


def test_the_documented_side_words_example_reads_as_documented(tmp_path: Path) -> None:
    from backstop.replay import parse_text_log
    from backstop.replay.events import BotPosition, OrderIntent

    toml, log = docs_example()
    dialect = parse_dialect(toml, "nqbook.toml")
    assert dict(dialect.sides) == {"sell short": -1, "cover": 1, "out": 0}
    path = tmp_path / "nq.log"
    path.write_text(log, encoding="utf-8")
    inc = parse_text_log(path, dialect, "strict")
    assert [(p.symbol, p.qty) for p in inc.of(BotPosition)] == [
        ("NQH6", 0.0),
        ("NQH6", -2.0),
        ("NQH6", 0.0),
    ]
    assert [(o.side, o.qty, o.order_id, o.path) for o in inc.of(OrderIntent)] == [
        (-1, 2.0, "7", "entry"),
        (1, 2.0, "8", "exit"),
    ]


POSITION = """
[[pattern]]
name = "book"
event = "bot_position"
regex = '^book: (?P<side>\\S+)(?: (?P<qty>-?\\d+))? (?P<symbol>\\w+)$'
"""


@pytest.mark.parametrize(
    ("message", "qty"),
    [
        ("book: SHORT 2 NQH6", -2.0),
        ("book: short 2 NQH6", -2.0),
        ("book: LONG 3 NQH6", 3.0),
        ("book: + 3 NQH6", 3.0),
        ("book: - 1 NQH6", -1.0),
        ("book: sell 1 NQH6", -1.0),
        ("book: FLAT NQH6", 0.0),
        ("book: FLAT 0 NQH6", 0.0),
        ("book: SHORT -2 NQH6", -2.0),
    ],
)
def test_builtin_position_side_words(tmp_path: Path, message: str, qty: float) -> None:
    from backstop.replay import parse_text_log
    from backstop.replay.events import BotPosition

    path = tmp_path / "b.log"
    path.write_text(f"2026-03-02 08:31:00,000 INFO {message}\n", encoding="utf-8")
    inc = parse_text_log(path, parse_dialect(HEAD + POSITION, "d.toml"), "strict")
    assert [(p.symbol, p.qty) for p in inc.of(BotPosition)] == [("NQH6", qty)]


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("book: SHORT NQH6", "b.log:1, symbol NQH6, column qty: book: missing: a SHORT position"),
        ("book: FLAT 2 NQH6", "column qty: book: FLAT with quantity 2: a flat position holds 0"),
        ("book: LONG -2 NQH6", "column qty: book: LONG disagrees with the signed quantity -2"),
        ("book: SIDEWAYS 2 NQH6", "column side: book: not a position side: 'SIDEWAYS' (known:"),
    ],
)
def test_bad_position_side_words_name_line_and_cause(
    tmp_path: Path, message: str, error: str
) -> None:
    from backstop.errors import DataError
    from backstop.replay import parse_text_log

    path = tmp_path / "b.log"
    path.write_text(f"2026-03-02 08:31:00,000 INFO {message}\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        parse_text_log(path, parse_dialect(HEAD + POSITION, "d.toml"), "strict")
    assert error in str(info.value)


def test_a_flat_word_is_not_an_order_side(tmp_path: Path) -> None:
    from backstop.errors import DataError
    from backstop.replay import parse_text_log

    dialect = parse_dialect(HEAD + "[sides]\nout = 0\n" + PATTERN, "d.toml")
    path = tmp_path / "s.log"
    path.write_text("2026-03-02 08:31:00,000 INFO signal NQH6 out\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"s\.log:1, symbol NQH6, column side: sig: 'out' means"):
        parse_text_log(path, dialect, "strict")


@pytest.mark.parametrize(
    ("sides", "message"),
    [
        ("[sides]\nSHORT = 2\n", "d.toml: sides.SHORT: must be 1 (buy/long), -1 (sell/short) or 0"),
        ("[sides]\nSHORT = true\n", "d.toml: sides.SHORT: must be 1 (buy/long), -1"),
        ("[sides]\nShort = -1\nSHORT = -1\n", "d.toml: sides.SHORT: repeats the side word 'short'"),
        ("[sides]\n' ' = 1\n", "d.toml: sides. : a side word must not be blank"),
        ("sides = 3\n", "d.toml: sides: must be a table of WORD = 1, -1 or 0"),
    ],
)
def test_bad_sides_tables_name_the_key(sides: str, message: str) -> None:
    assert error_of(sides + HEAD + PATTERN).startswith(message)


def test_position_side_constant_is_checked_at_load() -> None:
    text = HEAD + POSITION + "[pattern.set]\nside = 'up'\n"
    assert error_of(text).startswith(
        "d.toml: pattern[0] (book).set.side: not a position side: 'up'"
    )


@pytest.mark.parametrize(
    ("regex", "prefix"),
    [
        ("^_place_exit_order: placing (?P<side>BUY|SELL)", "_place_exit_order: placing "),
        ("^\\[STUB\\] Would place", "[STUB] Would place"),
        ("^a\\.b?c", "a."),  # b is optional: the literal start ends before it
        ("^ab+c", "ab"),
        ("^(?:Exit|Entry) order", ""),
        ("^a|b", ""),
        ("^\\d+ shares", ""),
    ],
)
def test_literal_prefix_is_what_every_match_starts_with(regex: str, prefix: str) -> None:
    assert literal_prefix(re.compile(regex)) == prefix


@pytest.mark.parametrize(
    ("line", "holds"),
    [
        ("2026-06-05 14:30:00 INFO bot: order_inte", True),
        ("BOT 2 ESZ5 fill", True),
        ("we bought 3", True),
        ('{"ts": 1, "kind": "broker_fill", "sym', True),
        ("Fancy entry: go long", True),  # the dialect's own order pattern starts so
        ("heartbeat ok", False),
        ("New 1m candle: O=1 H=2", False),
        ("recorder disabled", False),
    ],
)
def test_mentions_order(line: str, holds: bool) -> None:
    assert mentions_order(line, ("Fancy entry:",)) is holds
