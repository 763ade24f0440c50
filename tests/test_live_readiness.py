"""Readiness: each check of the pre-deployment checklist on its own, the whole list, and
``backstop readiness`` (exit 0 only when nothing fails). The Alpaca clock is read by the real
alpaca-py client from a loopback HTTP server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from backstop.engine.profile import RiskProfile
from backstop.errors import ConfigError
from backstop.runners.guardrails import incident_paths
from backstop.runners.live.check import Check
from backstop.runners.live.guards import guard_checks
from backstop.runners.live.readiness import (
    alpaca_broker_now,
    check_calendar,
    check_clock,
    check_keys,
    check_profile,
    check_replays,
    readiness,
    render,
)

ROOT = Path(__file__).resolve().parent.parent
REPLAYS = ROOT / "replays"
LIVE_ID, LIVE_SECRET = "AKLIVE0123456789ABCD", "s3cretLIVEs3cretLIVEs3cretLIVEs3cretLIVE"
PAPER_ID = "PKPAPER0123456789ABC"
S = 1_000_000_000
SAT = 1_796_482_800 * S  # Sat 2026-12-05 15:00 UTC
WED = 1_796_828_400 * S  # Wed 2026-12-09 15:00 UTC (10:00 New York)
BLACK_FRIDAY = 1_795_791_600 * S  # Fri 2026-11-27 15:00 UTC, the day after Thanksgiving
INCIDENT_LINES = [f"replay {p.name}" for p in incident_paths(REPLAYS)]  # 3 shipped so far
TOTAL = 18 + len(INCIDENT_LINES)  # keys, profile, 14 guards, the replays, clock, calendar


# ---- keys -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "mode", "passed", "detail"),
    [
        ({}, "paper", False, "APCA_API_KEY_ID and APCA_API_SECRET_KEY not set in the environment"),
        (
            {"APCA_API_KEY_ID": LIVE_ID, "APCA_API_SECRET_KEY": " "},
            "live",
            False,
            "APCA_API_SECRET_KEY not set in the environment",
        ),
        (
            {"APCA_API_KEY_ID": PAPER_ID, "APCA_API_SECRET_KEY": LIVE_SECRET},
            "live",
            False,
            "APCA_API_KEY_ID is a paper key id (starts with PK); LIVE needs live keys",
        ),
        (
            {"APCA_API_KEY_ID": PAPER_ID, "APCA_API_SECRET_KEY": LIVE_SECRET},
            "paper",
            True,
            "APCA_API_KEY_ID and APCA_API_SECRET_KEY set (a paper key id)",
        ),
        (
            {"APCA_API_KEY_ID": LIVE_ID, "APCA_API_SECRET_KEY": LIVE_SECRET},
            "live",
            True,
            "APCA_API_KEY_ID and APCA_API_SECRET_KEY set (not a paper key id)",
        ),
    ],
)
def test_keys_check(env: dict, mode: str, passed: bool, detail: str) -> None:
    assert check_keys(env, mode) == Check("keys", passed, detail)


# ---- profile --------------------------------------------------------------------------------
def test_profile_check_passes_a_preset_and_fails_a_bad_file_naming_key_and_file(
    tmp_path: Path,
) -> None:
    check, profile = check_profile("alpaca-live")
    assert check.passed and profile is not None
    assert check.detail.startswith("alpaca-live (profiles/alpaca-live.toml) valid: 22 settings")
    built = RiskProfile.load("alpaca-live").with_settings({"risk.max_positions": 3})
    check, profile = check_profile(built)
    assert check.passed and profile is built
    bad = tmp_path / "p.toml"
    bad.write_text("[risk]\nmax_positions = -3\n")
    check, profile = check_profile(str(bad))
    assert profile is None and not check.passed
    assert check.detail.startswith(f"{bad}: risk.max_positions: ")


# ---- guards ---------------------------------------------------------------------------------
GUARD_NAMES = [
    "guard reduce-only exits",
    "guard protective stop and target",
    "guard max loss per trade",
    "guard daily loss limit",
    "guard max trades per day",
    "guard daily allocation",
    "guard drawdown halt",
    "guard loss-streak lockout",
    "guard max positions",
    "guard data quality",
    "guard new signals only",
    "guard order size limit",
    "guard duplicate entries",
    "guard kill switch",
]


def test_guard_checks_all_pass_on_the_alpaca_live_preset() -> None:
    checks = guard_checks(RiskProfile.load("alpaca-live"))
    assert [c.name for c in checks] == GUARD_NAMES
    assert all(c.passed for c in checks)
    by = {c.name: c.detail for c in checks}
    assert by["guard max positions"] == "risk.max_positions = 5 (seed 003: at most 5 positions)"
    assert by["guard kill switch"] == (
        "kill.daily_loss_pct = 0.08, kill.disconnect_seconds = 60, kill.min_data_quality = 0.3; "
        "kill.flatten = true; manual: backstop kill (seed 001)"
    )


def test_guard_checks_on_research_name_the_keys_to_set() -> None:
    checks = guard_checks(RiskProfile.load("research"))
    assert [c.name for c in checks if c.passed] == [
        "guard reduce-only exits",
        "guard duplicate entries",
    ]
    by = {c.name: c.detail for c in checks}
    assert by["guard daily loss limit"] == (
        "off: set risk.daily_loss_pct or risk.daily_loss_dollars or risk.circuit_loss_pct "
        "(seed 000: 5% daily-loss circuit; seed 001: $30 a day)"
    )
    assert by["guard kill switch"].startswith("no automatic trigger: set kill.daily_loss_pct or ")


def test_guard_checks_fail_a_kill_switch_that_does_not_flatten_and_added_entries() -> None:
    profile = RiskProfile.load("alpaca-live").with_settings(
        {"kill.flatten": False, "risk.allow_add_to_winner": True}
    )
    failed = {c.name: c.detail for c in guard_checks(profile) if not c.passed}
    assert failed == {
        "guard duplicate entries": "off: risk.allow_add_to_winner = true lets an entry add to a "
        "held position (seed 003: no duplicate entries)",
        "guard kill switch": "kill.flatten = false: a tripped kill switch would leave positions "
        "open (seed 001)",
    }


# ---- replays --------------------------------------------------------------------------------
def test_replays_check_one_line_per_shipped_incident() -> None:
    checks = check_replays(RiskProfile.load("alpaca-live"), REPLAYS)
    assert [(c.name, c.passed) for c in checks] == [(name, True) for name in INCIDENT_LINES]
    assert checks[0].name == "replay es-reversal-2025-12-12"
    assert checks[0].detail == "blocked (14812, 15638)"


def test_replays_check_names_the_order_a_profile_lets_through(tmp_path: Path) -> None:
    """Mark mention:317 (allowed today, loss at the stop ~$100) as an order that must be
    blocked: the research profile lets it through, a $20 loss cap blocks it."""
    case = tmp_path / "incidents" / "kevin"
    shutil.copytree(REPLAYS / "silent-noop-signals", case)
    (case / "expect.toml").write_text('[orders."mention:317"]\nverdict = "BLOCKED"\n')
    research = RiskProfile.load("research")
    [check] = check_replays(research, tmp_path / "incidents")
    assert check == Check("replay kevin", False, "not blocked: mention:317 (ALLOWED)")
    capped = research.with_settings({"entry.max_loss_per_trade": 20})
    assert check_replays(capped, tmp_path / "incidents") == [
        Check("replay kevin", True, "blocked (mention:317)")
    ]


def test_replays_check_fails_without_incidents(tmp_path: Path) -> None:
    [check] = check_replays(RiskProfile.load("research"), tmp_path / "none")
    assert check == Check(
        "replays",
        False,
        f"incidents: {tmp_path / 'none'}: not an incident folder "
        "(run from the checkout, or give --incidents)",
    )


# ---- clock ----------------------------------------------------------------------------------
def _local(*values: int):
    it = iter(values)
    return lambda: next(it)


def test_clock_check_compares_the_broker_with_the_midpoint_of_the_request() -> None:
    t = WED
    ahead = check_clock(lambda: t + 2 * 10**6 + 500 * 10**6, local_now=_local(t, t + 4 * 10**6))
    assert ahead == Check(
        "clock", True, "broker ahead by 500 ms (tolerance 2,000 ms, round trip 4 ms)"
    )
    behind = check_clock(lambda: t - 3 * S, local_now=_local(t, t), tolerance_s=2.0)
    assert behind == Check(
        "clock", False, "broker behind by 3,000 ms (tolerance 2,000 ms, round trip 0 ms)"
    )


def test_clock_check_fails_on_an_error_or_no_answer() -> None:
    def broken() -> int:
        raise ConnectionError("connection refused")

    assert check_clock(broken, local_now=_local(WED, WED)) == Check(
        "clock", False, "cannot read the broker's clock: ConnectionError: connection refused"
    )
    release = threading.Event()
    try:
        hung = check_clock(lambda: release.wait(30) and 0, local_now=_local(WED), timeout_s=0.2)
    finally:
        release.set()
    assert hung == Check(
        "clock", False, "cannot read the broker's clock: TimeoutError: no answer within 0.2 s"
    )


class _ClockServer:
    """A loopback stand-in for Alpaca's ``GET /v2/clock`` (the fields of alpaca-py's model)."""

    def __init__(self, timestamp: str) -> None:
        self.headers: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.headers.append(dict(self.headers))
                if self.path != "/v2/clock":
                    self.send_response(404)
                    self.end_headers()
                    return
                body = json.dumps(
                    {
                        "timestamp": timestamp,
                        "is_open": True,
                        "next_open": "2026-12-10T09:30:00-05:00",
                        "next_close": "2026-12-09T16:00:00-05:00",
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def alpaca_clock() -> Iterator[_ClockServer]:
    server = _ClockServer("2026-12-09T10:00:00.250000-05:00")
    try:
        yield server
    finally:
        server.close()


def test_alpaca_clock_is_read_by_alpaca_py_with_the_keys_from_env(
    alpaca_clock: _ClockServer,
) -> None:
    env = {"APCA_API_KEY_ID": LIVE_ID, "APCA_API_SECRET_KEY": LIVE_SECRET}
    now = alpaca_broker_now(env, paper=False, url_override=alpaca_clock.url)
    assert now() == WED + 250_000_000
    [headers] = alpaca_clock.headers
    assert headers["APCA-API-KEY-ID"] == LIVE_ID
    assert headers["APCA-API-SECRET-KEY"] == LIVE_SECRET
    check = check_clock(now, local_now=_local(WED, WED + 2 * 10**6))
    assert check == Check(
        "clock", True, "broker ahead by 249 ms (tolerance 2,000 ms, round trip 2 ms)"
    )


# ---- calendar -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("now", "detail"),
    [
        (SAT, "closed now; next open Mon 2026-12-07 09:30 America/New_York (in 1 d 23 h 30 min)"),
        (WED, "open now; closes Wed 2026-12-09 16:00 America/New_York (in 6 h 0 min)"),
        (BLACK_FRIDAY, "open now; closes Fri 2026-11-27 13:00 America/New_York (in 3 h 0 min)"),
    ],
)
def test_calendar_check_says_open_now_or_the_next_open(now: int, detail: str) -> None:
    assert check_calendar(now, "XNYS") == Check("calendar XNYS", True, detail)


def test_calendar_check_fails_a_profile_on_another_exchange() -> None:
    assert check_calendar(WED, "XNYS", "CMES") == Check(
        "calendar XNYS", False, "the profile's calendar is CMES, but the broker trades on XNYS"
    )


# ---- the whole list -------------------------------------------------------------------------
def test_readiness_is_ready_with_live_keys_a_full_profile_and_a_clock_in_step() -> None:
    env = {"APCA_API_KEY_ID": LIVE_ID, "APCA_API_SECRET_KEY": LIVE_SECRET}
    checks = readiness(
        "alpaca-live",
        "alpaca",
        "live",
        env=env,
        incidents=REPLAYS,
        broker_now=lambda: WED + 10**6,
        now_ns=lambda: WED,
    )
    assert [c.name for c in checks] == [
        "keys",
        "profile",
        *GUARD_NAMES,
        *INCIDENT_LINES,
        "clock",
        "calendar XNYS",
    ]
    assert all(c.passed and not c.skipped for c in checks)
    text = render(checks, "hdr")
    assert text.endswith(f"\nREADY: {TOTAL} of {TOTAL} checks passed")
    assert LIVE_ID not in text and LIVE_SECRET not in text


def test_readiness_without_keys_fails_keys_and_does_not_ask_the_broker() -> None:
    checks = readiness("alpaca-live", "alpaca", "paper", env={}, incidents=REPLAYS)
    failed = [c for c in checks if not c.passed]
    assert failed == [
        Check("keys", False, "APCA_API_KEY_ID and APCA_API_SECRET_KEY not set in the environment"),
        Check("clock", False, "not asked: the keys check failed"),
    ]
    assert render(checks, "hdr").endswith(f"\nNOT READY: 2 of {TOTAL} checks failed: keys, clock")


def test_readiness_masks_a_key_an_error_echoes() -> None:
    env = {"APCA_API_KEY_ID": LIVE_ID, "APCA_API_SECRET_KEY": LIVE_SECRET}

    def echoes() -> int:
        raise PermissionError(f"forbidden for key {LIVE_ID}")

    checks = readiness(
        "alpaca-live", "alpaca", "live", env=env, incidents=REPLAYS, broker_now=echoes
    )
    [clock] = [c for c in checks if c.name == "clock"]
    assert clock.detail == "cannot read the broker's clock: PermissionError: forbidden for key ***"


def test_readiness_with_the_fake_skips_keys_and_clock_saying_why() -> None:
    checks = readiness("alpaca-live", "alpaca-fake", "paper", env={}, incidents=REPLAYS)
    skipped = {c.name: c.detail for c in checks if c.skipped}
    assert skipped["keys"] == "the fake Alpaca server needs no keys"
    assert skipped["clock"].startswith("the fake Alpaca server")
    assert all(c.passed for c in checks)


def test_readiness_with_a_bad_profile_fails_its_dependent_lines(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text("[risk]\nno_such_key = 1\n")
    checks = readiness(str(bad), "alpaca-fake", env={}, incidents=REPLAYS, now_ns=lambda: WED)
    assert [(c.name, c.passed) for c in checks] == [
        ("keys", True),
        ("profile", False),
        ("guards", False),
        ("replays", False),
        ("clock", True),
        ("calendar XNYS", True),
    ]


@pytest.mark.parametrize(
    ("broker", "mode", "key"),
    [
        ("ibkr-fake", "paper", "--broker"),  # none: point ibkr at its port
        ("alpaca", "yolo", "--mode"),
        ("alpaca-fake", "live", "--mode"),
    ],
)
def test_readiness_refuses_bad_choices_naming_the_option(broker: str, mode: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        readiness("research", broker, mode, env={})
    assert err.value.key == key


# ---- the command ----------------------------------------------------------------------------
def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backstop.cli", "readiness", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_cli_readiness_exit_0_only_when_nothing_fails() -> None:
    ready = _cli("--profile", "alpaca-live", "--broker", "alpaca-fake")
    assert ready.returncode == 0, ready.stdout + ready.stderr
    lines = ready.stdout.splitlines()
    assert lines[0] == "readiness: profile alpaca-live, broker alpaca-fake, mode PAPER"
    assert lines[-1] == f"READY: {TOTAL - 2} of {TOTAL} checks passed (2 skipped)"
    not_ready = _cli("--profile", "signal-follower", "--broker", "alpaca-fake")
    assert not_ready.returncode == 1 and not_ready.stderr == ""
    assert (
        "FAIL guard max positions: off: set risk.max_positions (seed 003: at most 5 positions)"
        in (not_ready.stdout.splitlines())
    )
    assert not_ready.stdout.splitlines()[-1] == (
        f"NOT READY: 6 of {TOTAL} checks failed (2 skipped): guard max loss per trade, guard "
        "loss-streak lockout, guard max positions, guard data quality, guard order size limit, "
        "guard kill switch"
    )


def test_cli_readiness_live_with_the_fake_is_one_error_line() -> None:
    out = _cli("--profile", "alpaca-live", "--broker", "alpaca-fake", "--mode", "live")
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == (
        "backstop: error: --mode: live needs --broker alpaca: the fake cannot trade live\n"
    )


def test_cli_readiness_never_prints_key_values(tmp_path: Path) -> None:
    import os

    env = dict(os.environ, APCA_API_KEY_ID=PAPER_ID, APCA_API_SECRET_KEY=LIVE_SECRET)
    out = _cli("--profile", "alpaca-live", "--broker", "alpaca", "--mode", "live", env=env)
    assert out.returncode == 1
    assert PAPER_ID not in out.stdout + out.stderr and LIVE_SECRET not in out.stdout + out.stderr
    assert (
        "FAIL keys: APCA_API_KEY_ID is a paper key id (starts with PK); LIVE needs live keys"
        in (out.stdout.splitlines())
    )
