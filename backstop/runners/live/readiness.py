"""The pre-deployment checklist (seed 001) as checks that each pass or fail, with a reason.

Seed 001 shipped a bot declared "production-ready" on a checklist of boxes nobody could
tick by running anything. Here each line is a function returning a ``Check``: broker keys
present (and not paper keys for LIVE; on IB instead the gateway answering and the account
paper or live as the mode needs, ``readiness_ibkr``), the risk profile valid, every guard
the seeds require switched on, every incident under ``replays/`` blocked by the profile, the
broker's clock in step with ours, and the exchange calendar (open now, or when it opens
next). ``readiness`` runs them all; ``backstop readiness`` prints one line each and exits 0
only when none fails.

A check that cannot apply (the fake broker needs no keys and its clock is a bar tape) is
marked skipped, with the reason; a skipped check does not fail the list. Key values are
never printed, only whether they are set and what kind they are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from backstop.engine.clock import LiveClock
from backstop.engine.profile import RiskProfile
from backstop.errors import BackstopError, ConfigError
from backstop.runners.live.check import Check, skipped
from backstop.runners.live.guards import guard_checks

KEY_ID = "APCA_API_KEY_ID"
SECRET = "APCA_API_SECRET_KEY"
PAPER_KEY_PREFIX = "PK"  # Alpaca paper key ids start with PK (live ones with AK)
BROKERS = ("alpaca", "alpaca-fake", "ibkr")
MODES = ("observe", "paper", "live")
DEFAULT_TOLERANCE_S = 2.0
DEFAULT_CLOCK_TIMEOUT_S = 10.0
EXCHANGE = "XNYS"  # Alpaca trades US equities
NS = 1_000_000_000
MIN_SCRUB = 8  # key values this long are masked in every detail (Alpaca's are 20 and 40)
MAX_ERROR = 240  # characters of a broker error kept in the clock line


# ---- keys -----------------------------------------------------------------------------------
def check_keys(env: Mapping[str, str], mode: str) -> Check:
    """Alpaca keys present in the environment; in LIVE mode the key id must not be a paper
    key. Only the variable names and the key kind are printed, never a value."""
    missing = [name for name in (KEY_ID, SECRET) if not env.get(name, "").strip()]
    if missing:
        return Check("keys", False, f"{' and '.join(missing)} not set in the environment")
    paper = env[KEY_ID].strip().startswith(PAPER_KEY_PREFIX)
    kind = "a paper key id" if paper else "not a paper key id"
    if mode == "live" and paper:
        return Check(
            "keys",
            False,
            f"{KEY_ID} is a paper key id (starts with {PAPER_KEY_PREFIX}); LIVE needs live keys",
        )
    return Check("keys", True, f"{KEY_ID} and {SECRET} set ({kind})")


# ---- profile --------------------------------------------------------------------------------
def check_profile(name_or_path: str | Path | RiskProfile) -> tuple[Check, RiskProfile | None]:
    """The profile loads and validates (a preset name or a TOML file; a ``RiskProfile`` the
    runner built, with its overrides, was validated when it was built)."""
    try:
        profile = (
            name_or_path
            if isinstance(name_or_path, RiskProfile)
            else RiskProfile.load(name_or_path)
        )
    except BackstopError as exc:
        return Check("profile", False, str(exc)), None
    where = profile.source or "defaults"
    return (
        Check(
            "profile",
            True,
            f"{profile.name} ({where}) valid: {len(profile.settings)} settings, "
            f"hash {profile.content_hash()}",
        ),
        profile,
    )


# ---- replays --------------------------------------------------------------------------------
def check_replays(profile: RiskProfile, incidents: str | Path = "replays") -> list[Check]:
    """One check per incident folder under ``incidents``: every order its ``expect.toml``
    marks BLOCKED is blocked by ``profile`` (``runners/guardrails.py``)."""
    from backstop.runners.guardrails import incident_let_through, incident_paths

    try:
        paths = incident_paths(incidents)
    except BackstopError as exc:
        return [Check("replays", False, f"{exc} (run from the checkout, or give --incidents)")]
    out = []
    for path in paths:
        name = f"replay {path.name}"
        try:
            must, missed = incident_let_through(path, profile)
        except BackstopError as exc:
            out.append(Check(name, False, f"cannot replay: {exc}"))
            continue
        if missed:
            out.append(Check(name, False, f"not blocked: {', '.join(missed)}"))
        else:
            out.append(Check(name, True, f"blocked ({', '.join(must)})"))
    return out


# ---- clock ----------------------------------------------------------------------------------
def _bounded(call: Callable[[], int], timeout_s: float) -> int:
    """``call()`` in a helper thread, waiting at most ``timeout_s`` (a broker client without
    a request timeout must not hang the checklist)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc

    worker = threading.Thread(target=run, name="readiness-clock", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return int(box["value"])


def check_clock(
    broker_now: Callable[[], int],
    *,
    local_now: Callable[[], int] | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    timeout_s: float = DEFAULT_CLOCK_TIMEOUT_S,
) -> Check:
    """The broker's time (``broker_now()``, ns UTC: the runner passes its adapter's) against
    the local clock, within ``tolerance_s``. The local time is taken as the midpoint of the
    request, so the round trip does not count as offset."""
    local = local_now or LiveClock().now_ns
    before = local()
    try:
        broker = _bounded(broker_now, timeout_s)
    except Exception as exc:
        text = " ".join(str(exc).split())
        if len(text) > MAX_ERROR:
            text = text[: MAX_ERROR - 3] + "..."
        return Check(
            "clock", False, f"cannot read the broker's clock: {type(exc).__name__}: {text}"
        )
    after = local()
    offset_ms = (broker - (before + after) / 2) / 1e6
    trip_ms = (after - before) / 1e6
    detail = (
        f"broker {'ahead' if offset_ms >= 0 else 'behind'} by {abs(offset_ms):,.0f} ms "
        f"(tolerance {tolerance_s * 1000:,.0f} ms, round trip {trip_ms:,.0f} ms)"
    )
    return Check("clock", abs(offset_ms) <= tolerance_s * 1000, detail)


def alpaca_broker_now(
    env: Mapping[str, str], *, paper: bool, url_override: str | None = None
) -> Callable[[], int]:
    """A callable returning Alpaca's clock (``TradingClient.get_clock().timestamp``) in ns,
    with the keys from ``env`` (``url_override``: a loopback server in tests)."""

    def now() -> int:
        from alpaca.trading.client import TradingClient

        client = TradingClient(
            env[KEY_ID].strip(), env[SECRET].strip(), paper=paper, url_override=url_override
        )
        stamp = client.get_clock().timestamp  # type: ignore[union-attr]
        seconds = int(stamp.timestamp())
        return seconds * NS + stamp.microsecond * 1000

    return now


def _scrub(check: Check, env: Mapping[str, str]) -> Check:
    """A check whose detail cannot hold a key value (an error text echoing a header)."""
    detail = check.detail
    for name in (KEY_ID, SECRET):
        value = env.get(name, "").strip()
        if len(value) >= MIN_SCRUB:
            detail = detail.replace(value, "***")
    return Check(check.name, check.passed, detail, check.skipped)


# ---- calendar -------------------------------------------------------------------------------
def _span(ns: int) -> str:
    minutes = max(0, ns) // (60 * NS)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return f"{days} d {hours} h {mins} min" if days else f"{hours} h {mins} min"


def check_calendar(now_ns: int, calendar: str = EXCHANGE, profile_calendar: str = "auto") -> Check:
    """Whether ``calendar`` is open at ``now_ns`` and until when, or when it opens next
    (a closed market passes: readiness may run overnight). It fails when the profile names
    another calendar (its market-hours and end-of-day rules would use the wrong sessions)
    or the calendar cannot answer."""
    import numpy as np
    import pandas as pd

    from backstop.data.calendars import bar_sessions

    name = f"calendar {calendar}"
    if profile_calendar not in ("auto", calendar):
        return Check(
            name,
            False,
            f"the profile's calendar is {profile_calendar}, but the broker trades on {calendar}",
        )
    try:
        where = bar_sessions(np.array([now_ns], dtype=np.int64), calendar)
    except BackstopError as exc:
        return Check(name, False, f"cannot read the calendar: {exc}")
    zone = "America/New_York" if calendar == "XNYS" else "America/Chicago"

    def local(ns: int) -> str:
        return pd.Timestamp(ns, unit="ns", tz="UTC").tz_convert(zone).strftime("%a %Y-%m-%d %H:%M")

    open_ns, close_ns = int(where.open_ns[0]), int(where.close_ns[0])
    if int(where.session[0]) >= 0:
        detail = f"open now; closes {local(close_ns)} {zone} (in {_span(close_ns - now_ns)})"
    else:
        detail = f"closed now; next open {local(open_ns)} {zone} (in {_span(open_ns - now_ns)})"
    return Check(name, True, detail)


# ---- the whole list -------------------------------------------------------------------------
def readiness(
    profile: str | Path | RiskProfile,
    broker: str,
    mode: str = "paper",
    *,
    env: Mapping[str, str],
    incidents: str | Path = "replays",
    broker_now: Callable[[], int] | None = None,
    now_ns: Callable[[], int] | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    gateway: tuple[str, int, int, str] = ("127.0.0.1", 4002, 1, ""),
) -> list[Check]:
    """Every check, in the order printed. ``broker_now``: the broker's clock (default: for
    ``alpaca``, ``TradingClient.get_clock`` with the keys from ``env``); ``now_ns``: the local
    clock (default: the system clock). ``gateway``: for ``ibkr``, the gateway's host, port,
    client id and account (``readiness_ibkr``: gateway and account lines instead of keys)."""
    if broker not in BROKERS:
        raise ConfigError("--broker", f"must be one of {list(BROKERS)}, got {broker!r}")
    if mode not in MODES:
        raise ConfigError("--mode", f"must be one of {list(MODES)}, got {mode!r}")
    if broker == "alpaca-fake" and mode == "live":
        raise ConfigError("--mode", "live needs --broker alpaca: the fake cannot trade live")
    local = now_ns or LiveClock().now_ns
    if broker == "ibkr":
        return _ibkr_readiness(profile, mode, gateway, incidents, local, tolerance_s)
    checks: list[Check] = []
    if broker == "alpaca-fake":
        checks.append(skipped("keys", "the fake Alpaca server needs no keys"))
    else:
        checks.append(check_keys(env, mode))
    profile_check, loaded = check_profile(profile)
    checks.append(profile_check)
    if loaded is None:
        checks.append(Check("guards", False, "not checked: the profile did not load"))
        checks.append(Check("replays", False, "not checked: the profile did not load"))
    else:
        checks.extend(guard_checks(loaded))
        checks.extend(check_replays(loaded, incidents))
    keys_ok = checks[0].passed
    checks.append(_clock_check(broker, keys_ok, env, broker_now, local, tolerance_s))
    calendar = loaded.calendar if loaded is not None else "auto"
    checks.append(check_calendar(local(), EXCHANGE, calendar))
    return [_scrub(c, env) for c in checks]


def _profile_checks(profile: str | Path | RiskProfile, incidents: str | Path) -> list[Check]:
    """The profile line, then its guards and replays (failed lines when it did not load)."""
    profile_check, loaded = check_profile(profile)
    if loaded is None:
        return [
            profile_check,
            Check("guards", False, "not checked: the profile did not load"),
            Check("replays", False, "not checked: the profile did not load"),
        ]
    return [profile_check, *guard_checks(loaded), *check_replays(loaded, incidents)]


def _ibkr_readiness(
    profile: str | Path | RiskProfile,
    mode: str,
    gateway: tuple[str, int, int, str],
    incidents: str | Path,
    local: Callable[[], int],
    tolerance_s: float,
) -> list[Check]:
    """IB's list: gateway, account, profile, guards, replays, clock, the CME calendar."""
    from backstop.runners.live import readiness_ibkr as ib

    host, port, client_id, account = gateway
    facts = ib.read_gateway(host, port, client_id, account)
    gw, acct, clock = ib.gateway_checks(
        facts,
        mode,
        account,
        lambda now: check_clock(now, local_now=local, tolerance_s=tolerance_s),
    )
    checks = [gw, acct, *_profile_checks(profile, incidents), clock]
    _, loaded = check_profile(profile)
    calendar = loaded.calendar if loaded is not None else "auto"
    checks.append(check_calendar(local(), ib.EXCHANGE, calendar))
    return checks


def _clock_check(
    broker: str,
    keys_ok: bool,
    env: Mapping[str, str],
    broker_now: Callable[[], int] | None,
    local: Callable[[], int],
    tolerance_s: float,
) -> Check:
    """The broker's clock: the one given, else Alpaca's asked with the keys (not asked when
    the keys check failed: missing keys cannot ask, and paper keys must not ask the live
    endpoint), else skipped for the fake."""
    if broker_now is not None:
        return check_clock(broker_now, local_now=local, tolerance_s=tolerance_s)
    if broker == "alpaca-fake":
        return skipped("clock", _fake_clock_reason())
    if not keys_ok:
        return Check("clock", False, "not asked: the keys check failed")
    # the endpoint the keys belong to: a paper key id asks the paper API, a live one the live
    # API (LIVE with paper keys never gets here: the keys check failed)
    now = alpaca_broker_now(env, paper=env[KEY_ID].strip().startswith(PAPER_KEY_PREFIX))
    return check_clock(now, local_now=local, tolerance_s=tolerance_s)


def _fake_clock_reason() -> str:
    """Why the fake's clock is not compared (it is either not installed, or a tape)."""
    from importlib.util import find_spec

    try:
        found = find_spec("backstop.testing.fake_alpaca") is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        return "the fake Alpaca server (backstop.testing.fake_alpaca) is not in this install"
    return "the fake Alpaca server's clock is its bar tape, not the wall clock"


def render(checks: list[Check], header: str) -> str:
    """The checklist as printed: a header, one line per check, and the verdict."""
    failed = [c.name for c in checks if not c.passed]
    passed = sum(c.passed and not c.skipped for c in checks)
    skips = sum(c.skipped for c in checks)
    lines = [header, *(c.line() for c in checks)]
    tail = f" ({skips} skipped)" if skips else ""
    if failed:
        lines.append(
            f"NOT READY: {len(failed)} of {len(checks)} checks failed{tail}: " + ", ".join(failed)
        )
    else:
        lines.append(f"READY: {passed} of {len(checks)} checks passed{tail}")
    return "\n".join(lines)
