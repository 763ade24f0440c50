"""Text-log parsing through dialects: good logs to exact events, bad lines to exact errors.

Every malformed input ends in a ``DataError`` naming ``file:line`` (strict) or in counted,
listed ``SkippedLine``s (tolerant); times are checked to the nanosecond against UTC.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from backstop.errors import DataError
from backstop.replay import (
    Advisory,
    BotPosition,
    BrokerFill,
    LogWarning,
    OrderIntent,
    PnlRecord,
    Signal,
    load_dialect,
    parse_text_log,
)
from backstop.replay.times import NS

LOGGER = "mytrader.execution.live_trading_manager"


def utc_ns(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> int:
    """UTC ns of a UTC wall time."""
    moment = dt.datetime(y, mo, d, h, mi, s, us, tzinfo=dt.UTC)
    return int(moment.timestamp()) * NS + moment.microsecond * 1000


def mt(stamp: str, message: str, level: str = "INFO", logger: str = LOGGER) -> str:
    """One mytrader log line as Python logging prints it."""
    return f"{stamp} - {logger} - {level} - {message}"


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD_MYTRADER = [
    mt("2025-12-12 08:52:00,009", "Current position: -1 ESZ5"),
    mt("2025-12-12 08:52:30,001", "heartbeat ok", level="DEBUG"),
    mt("2025-12-12 08:53:01,123", "Hybrid pipeline emitted SCALP_BUY @ 0.36 confidence"),
    mt("2025-12-12 08:53:13,208", "AWS Decision Agent returned WAIT (50%)"),
    mt("2025-12-12 08:53:13,209", "WAIT advisory only - not blocking trade", level="WARNING"),
    mt(
        "2025-12-12 08:53:13,214",
        "_place_exit_order: placing BUY 1 ESZ5 (order_id=14812, stop_loss=None, take_profit=None)",
    ),
    mt(
        "2025-12-12 08:53:20,000",
        "Exit order 14812 filled BUY 1 @ 6890.50",
        logger="mytrader.execution.ib_executor",
    ),
    mt("2025-12-12 08:53:20,431", "Telegram alert: SL=None, TP=None"),
    mt(
        "2025-12-12 08:55:01,312",
        "Hybrid pipeline produced non-positive protective levels (stop=0.0, target=0.0)",
        level="WARNING",
    ),
    mt(
        "2025-12-12 09:35:22,521",
        "Commission report: CommissionReport(execId='0000e0d5.1.01', commission=2.25, "
        "currency='USD', realizedPNL=-592.0, yield_=0.0, yieldRedemptionDate=0)",
        logger="mytrader.execution.ib_executor",
    ),
    mt(
        "2025-12-12 09:35:22,540",
        "No current trade ID for exit logging",
        level="WARNING",
        logger="mytrader.rag.pipeline_integration",
    ),
]


def test_mytrader_log_reads_every_message_kind_with_exact_times(tmp_path: Path) -> None:
    path = write(tmp_path, "bot.log", GOOD_MYTRADER)
    inc = parse_text_log(path, "mytrader", "strict")
    assert inc.counts() == {
        "bot_position": 1,
        "signal": 1,
        "advisory": 1,
        "order_intent": 1,
        "broker_fill": 1,
        "pnl": 1,
        "log_warning": 4,
    }
    assert inc.ignored == 1  # the DEBUG line
    assert inc.skipped == () and inc.warnings == ()
    assert inc.tz == "America/Chicago"
    (fill,) = inc.of(BrokerFill)
    # 08:53:20 America/Chicago (CST, UTC-6) is 14:53:20Z
    assert fill.ts == 1_765_551_200_000_000_000 == utc_ns(2025, 12, 12, 14, 53, 20)
    assert (fill.order_id, fill.side, fill.qty, fill.price) == ("14812", 1, 1.0, 6890.5)
    assert fill.symbol == "ESZ5"  # sticky: named by the position line and the exit order
    assert fill.source == f"{path}:7"
    (signal,) = inc.of(Signal)
    assert signal == Signal(
        ts=utc_ns(2025, 12, 12, 14, 53, 1, 123000),
        source=f"{path}:3",
        symbol="ESZ5",
        side=1,
        label="SCALP_BUY",
        confidence=0.36,
        strategy_id="hybrid",
    )
    (advisory,) = inc.of(Advisory)
    assert (advisory.verdict, advisory.confidence, advisory.agent) == (
        "WAIT",
        0.5,
        "aws_decision_agent",
    )
    (intent,) = inc.of(OrderIntent)
    assert (intent.order_id, intent.path, intent.stop, intent.target, intent.qty) == (
        "14812",
        "exit",
        None,
        None,
        1.0,
    )
    assert inc.of(PnlRecord)[0].amount == -592.0
    assert inc.of(BotPosition)[0].qty == -1.0
    assert [w.message for w in inc.of(LogWarning)][-1] == "No current trade ID for exit logging"
    assert [e.ts for e in inc.events] == sorted(e.ts for e in inc.events)


def test_unknown_message_is_an_error_in_strict_mode_naming_file_and_line(tmp_path: Path) -> None:
    lines = [
        *GOOD_MYTRADER[:3],
        mt("2025-12-12 08:53:02,000", "Reticulating splines"),
        *GOOD_MYTRADER[3:],
    ]
    path = write(tmp_path, "bot.log", lines)
    with pytest.raises(DataError) as info:
        parse_text_log(path, "mytrader", "strict")
    assert str(info.value) == f"{path}:4: unknown message: no mytrader pattern matches"


def test_tolerant_mode_counts_and_lists_skipped_lines(tmp_path: Path) -> None:
    lines = [
        *GOOD_MYTRADER[:3],
        mt("2025-12-12 08:53:02,000", "Reticulating splines"),  # unknown message
        "2025-12-12 08:53:0",  # truncated
        mt("2025-12-12 08:53:03,000", "AWS Decision Agent returned WAIT (5O%)"),  # letter O
        *GOOD_MYTRADER[3:],
    ]
    path = write(tmp_path, "bot.log", lines)
    inc = parse_text_log(path, "mytrader", "tolerant")
    assert len(inc.skipped) == 3
    assert [s.source for s in inc.skipped] == [f"{path}:4", f"{path}:5", f"{path}:6"]
    assert inc.skipped[0].reason == "unknown message: no mytrader pattern matches"
    assert inc.skipped[1].reason.startswith("line does not match the mytrader line format")
    assert inc.skipped[1].text == "2025-12-12 08:53:0"
    assert len(inc.events) == 10  # the 10 good event lines are all there


def test_truncated_line_is_an_error_in_strict_mode(tmp_path: Path) -> None:
    path = write(tmp_path, "bot.log", [GOOD_MYTRADER[0], "2025-12-12 08:53:01,123 - mytrader.exe"])
    with pytest.raises(DataError, match=r"bot\.log:2: line does not match the mytrader line"):
        parse_text_log(path, "mytrader", "strict")


def test_out_of_range_confidence_names_the_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bot.log",
        [
            GOOD_MYTRADER[0],
            mt("2025-12-12 08:53:01,123", "Hybrid pipeline emitted SELL @ 1.36 confidence"),
        ],
    )
    with pytest.raises(DataError) as info:
        parse_text_log(path, "mytrader", "strict")
    assert str(info.value) == (
        f"{path}:2, symbol ESZ5, column confidence: hybrid_signal: confidence must lie in 0..1 "
        "(or be a percentage), got '1.36'"
    )


def test_out_of_order_timestamps_strict_error_tolerant_warning(tmp_path: Path) -> None:
    lines = [
        GOOD_MYTRADER[0],
        GOOD_MYTRADER[3],  # 08:53:13.208
        GOOD_MYTRADER[2],  # 08:53:01.123: earlier than line 2
        GOOD_MYTRADER[5],
    ]
    path = write(tmp_path, "bot.log", lines)
    with pytest.raises(DataError) as info:
        parse_text_log(path, "mytrader", "strict")
    assert str(info.value) == (
        f"{path}:3: out of order: timestamp 2025-12-12T08:53:01.123-06:00 is earlier than "
        "line 2 (2025-12-12T08:53:13.208-06:00)"
    )
    inc = parse_text_log(path, "mytrader", "tolerant")
    assert inc.skipped == ()
    assert len(inc.events) == 4  # kept
    assert [w.source for w in inc.warnings] == [f"{path}:3"]
    assert inc.warnings[0].reason.startswith("out of order, kept and sorted into place")
    assert [type(e) for e in inc.events] == [BotPosition, Signal, Advisory, OrderIntent]


def test_pylogging_kv_mixed_offsets_read_line_by_line(tmp_path: Path) -> None:
    lines = [
        "2026-06-05T14:05:12Z INFO bridge: signal symbol=NVDA side=buy",
        "2026-06-05 10:05:13-04:00 INFO bridge: signal symbol=AAPL side=buy",
        "2026-06-05T16:05:14.5+02:00 INFO signal symbol=AMD side=sell price=150.38",
        "2026-06-05 14:05:15,250 INFO bridge: signal symbol=PLTR side=BUY confidence=58%",
    ]
    path = write(tmp_path, "bridge.log", lines)
    inc = parse_text_log(path, "pylogging_kv", "strict")
    assert [e.ts for e in inc.events] == [
        utc_ns(2026, 6, 5, 14, 5, 12),
        utc_ns(2026, 6, 5, 14, 5, 13),
        utc_ns(2026, 6, 5, 14, 5, 14, 500000),
        utc_ns(2026, 6, 5, 14, 5, 15, 250000),  # naive: the dialect's zone, UTC
    ]
    signals = inc.of(Signal)
    assert [(s.symbol, s.side) for s in signals] == [
        ("NVDA", 1),
        ("AAPL", 1),
        ("AMD", -1),
        ("PLTR", 1),
    ]
    assert signals[2].price == 150.38 and signals[3].confidence == 0.58


def test_timezone_override_and_local_offsets(tmp_path: Path) -> None:
    path = write(
        tmp_path, "bridge.log", ["2026-01-20 16:05:02,101 INFO signal symbol=GLD side=buy"]
    )
    inc = parse_text_log(path, "pylogging_kv", "strict", timezone="America/New_York")
    assert inc.events[0].ts == 1_768_943_102_101_000_000  # 16:05:02.101 EST = 21:05:02.101Z


def test_kv_bad_number_and_missing_field(tmp_path: Path) -> None:
    lines = [
        "2026-06-05 14:05:12,402 INFO bridge: signal symbol=NVDA side=buy price=12.3.4",
        "2026-06-05 14:05:13,402 INFO bridge: signal symbol=NVDA price=12.3",
        "2026-06-05 14:05:14,402 INFO bridge: signal symbol=NVDA side=sideways",
        "2026-06-05 14:05:15,402 INFO bridge: signal symbol=NVDA side=buy price=nan",
        "2026-06-05 14:05:16,402 INFO bridge: signal symbol=NVDA side=buy price=None stop=None",
    ]
    path = write(tmp_path, "bridge.log", lines)
    with pytest.raises(DataError) as info:
        parse_text_log(path, "pylogging_kv", "strict")
    assert str(info.value) == (
        f"{path}:1, symbol NVDA, column price: signal: not a number: '12.3.4'"
    )
    inc = parse_text_log(path, "pylogging_kv", "tolerant")
    assert [s.reason for s in inc.skipped] == [
        "symbol NVDA, column price: signal: not a number: '12.3.4'",
        "symbol NVDA, column side: signal: missing",
        "symbol NVDA, column side: signal: not a side: 'sideways' "
        "(expected BUY/SELL/LONG/SHORT/1/-1/+/-)",
        "symbol NVDA, column price: signal: not a finite number: 'nan'",
    ]
    (signal,) = inc.of(Signal)
    assert signal.price is None and signal.stop is None


def test_dst_fall_back_repeated_hour_keeps_log_order(tmp_path: Path) -> None:
    # 2025-11-02: America/Chicago goes from CDT (UTC-5) back to CST (UTC-6) at 02:00 CDT.
    stamps = [
        "2025-11-02 00:59:00,000",
        "2025-11-02 01:30:00,000",  # first 01:30 (CDT) = 06:30Z
        "2025-11-02 01:59:59,000",
        "2025-11-02 01:00:05,000",  # the repeated hour (CST) = 07:00:05Z
        "2025-11-02 01:30:00,000",  # second 01:30 = 07:30Z
        "2025-11-02 02:00:00,000",  # 08:00Z
    ]
    lines = [mt(s, "Current position: 0 ESZ5") for s in stamps]
    inc = parse_text_log(write(tmp_path, "bot.log", lines), "mytrader", "strict")
    assert [e.ts for e in inc.events] == [
        utc_ns(2025, 11, 2, 5, 59),
        utc_ns(2025, 11, 2, 6, 30),
        utc_ns(2025, 11, 2, 6, 59, 59),
        utc_ns(2025, 11, 2, 7, 0, 5),
        utc_ns(2025, 11, 2, 7, 30),
        utc_ns(2025, 11, 2, 8, 0),
    ]


def test_dst_spring_forward_gap_is_an_error(tmp_path: Path) -> None:
    # 2026-03-08 02:30 does not exist in America/Chicago (02:00 CST -> 03:00 CDT).
    path = write(tmp_path, "bot.log", [mt("2026-03-08 02:30:00,000", "Current position: 0 ESZ5")])
    with pytest.raises(DataError) as info:
        parse_text_log(path, "mytrader", "strict")
    assert str(info.value) == (
        f"{path}:1, column time: local time does not exist in America/Chicago "
        "(skipped by a DST change)"
    )


def test_symbol_fallbacks(tmp_path: Path) -> None:
    path = write(tmp_path, "bot.log", [GOOD_MYTRADER[2]])  # a signal, no symbol anywhere
    with pytest.raises(DataError) as info:
        parse_text_log(path, "mytrader", "strict")
    assert str(info.value) == (
        f"{path}:1, column symbol: hybrid_signal: missing: the line names no symbol and no "
        "default symbol is set"
    )
    inc = parse_text_log(path, "mytrader", "strict", symbol="ESH6")
    assert inc.of(Signal)[0].symbol == "ESH6"


def test_hint_line_blank_lines_and_ignore_rules_are_counted(tmp_path: Path) -> None:
    lines = [
        "# dialect: mytrader",
        GOOD_MYTRADER[0],
        "",
        mt("2025-12-12 08:53:00,412", "New 1m candle: O=1 H=2 L=1 C=2 V=3"),
        mt("2025-12-12 08:55:01,311", "Hybrid pipeline emitted HOLD @ 0.44 confidence"),
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        mt("2025-12-12 08:55:02,000", "boom", level="ERROR"),
    ]
    inc = parse_text_log(write(tmp_path, "bot.log", lines), "mytrader", "strict")
    assert inc.ignored == 6
    assert inc.counts() == {"bot_position": 1, "log_warning": 1}
    assert inc.of(LogWarning)[0].message == "boom"


def test_magellan_stub_lines_become_sizeless_order_intents(tmp_path: Path) -> None:
    lines = [
        "2026-01-20 16:05:01,544 - daily_trend - INFO - Account equity: $100,000.00",
        "2026-01-20 16:05:02,101 - daily_trend - INFO - GLD: RSI(28)=61.84 above upper band "
        "55.0 -> BUY signal",
        "2026-01-20 16:05:02,102 - daily_trend - INFO - [STUB] Would place BUY order for GLD",
        "2026-01-20 16:05:02,351 - daily_trend - INFO - [STUB] Would place SELL order for META",
    ]
    inc = parse_text_log(write(tmp_path, "d.log", lines), "magellan", "strict")
    intents = inc.of(OrderIntent)
    assert [(i.symbol, i.side, i.path, i.qty) for i in intents] == [
        ("GLD", 1, "entry", None),
        ("META", -1, "exit", None),
    ]
    assert inc.counts()["account"] == 1


def test_100k_line_mytrader_log_parses_fast(tmp_path: Path) -> None:
    messages = [line.split(" - ", 3) for line in GOOD_MYTRADER]
    start = dt.datetime(2025, 12, 12, 0, 0, 0)
    lines = []
    for i in range(100_000):
        _, logger, level, message = messages[i % len(messages)]
        t = start + dt.timedelta(milliseconds=37 * i)
        stamp = f"{t:%Y-%m-%d %H:%M:%S},{t.microsecond // 1000:03d}"
        lines.append(f"{stamp} - {logger} - {level} - {message}")
    path = write(tmp_path, "big.log", lines)
    dialect = load_dialect("mytrader")
    began = time.perf_counter()
    inc = parse_text_log(path, dialect, "strict")
    elapsed = time.perf_counter() - began
    print(f"\n100,000-line mytrader log parsed in {elapsed:.3f} s")
    assert len(inc.events) + inc.ignored == 100_000
    assert inc.ignored == 100_000 // len(messages) + 1  # the DEBUG line of each cycle
    assert elapsed < 4.0  # generous: ~1 s on a slow shared 2-core box
