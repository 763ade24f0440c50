"""Scenario expectations (``expect.toml``): what a replay must show for the guardrails to hold.

CI runs every folder under ``replays/``; a guardrail that stops blocking a known incident
fails the build. Format::

    profile = "post-incident"         # the profile the scenario is judged under
    first_divergence = "14812"         # optional: the first decision today takes differently
    findings = ["POSITION_DESYNC"]     # optional: findings that must be reported (prefixes)

    [orders.14812]
    verdict = "BLOCKED"                # ALLOWED | BLOCKED | MODIFIED
    reasons = ["ADVISORY_WAIT", "EXIT_NO_EXPOSURE", "MISSING_PROTECTION"]  # must all be there
    qty = 24                           # optional: the quantity today would send
    note = "should never have existed" # optional: text one of the order's notes contains

    [pnl]
    actual = -1700.0                   # gross, in USD
    with_guardrails = 0.0
    tolerance = 0.01
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backstop.domain.enums import ReasonCode
from backstop.errors import ConfigError, check
from backstop.replay.issues import read_text
from backstop.replay.outcome import ALLOWED, BLOCKED, MODIFIED, Outcome

_TOP = {"profile", "first_divergence", "findings", "orders", "pnl", "description"}
_ORDER = {"verdict", "reasons", "qty", "note"}
_PNL = {"actual", "with_guardrails", "tolerance"}


@dataclass(frozen=True, slots=True)
class Expectations:
    """A parsed, validated ``expect.toml``."""

    source: str
    data: dict[str, Any]

    @property
    def profile(self) -> str | None:
        return self.data.get("profile")


def load_expectations(path: Path) -> Expectations:
    """Read and validate an ``expect.toml`` (unknown keys, bad types and codes name the key)."""
    src = str(path)
    try:
        text = read_text(path)
    except ValueError as exc:
        raise ConfigError("expect", str(exc), source=src) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("expect", f"not valid TOML: {exc}", source=src) from None
    for key in data:
        check(key in _TOP, ConfigError(key, f"unknown key (known: {sorted(_TOP)})", source=src))
    _types(data, src)
    for label, spec in data.get("orders", {}).items():
        for key in spec:
            check(key in _ORDER, ConfigError(f"orders.{label}.{key}", "unknown key", source=src))
        check(
            spec.get("verdict") in (ALLOWED, BLOCKED, MODIFIED),
            ConfigError(
                f"orders.{label}.verdict", "must be ALLOWED, BLOCKED or MODIFIED", source=src
            ),
        )
        for code in spec.get("reasons", []):
            check(
                code in ReasonCode.__members__,
                ConfigError(f"orders.{label}.reasons", f"unknown reason code {code}", source=src),
            )
    for key, value in data.get("pnl", {}).items():
        check(key in _PNL, ConfigError(f"pnl.{key}", "unknown key", source=src))
        check(
            _is_number(value),
            ConfigError(f"pnl.{key}", f"must be a number, got {value!r}", source=src),
        )
    return Expectations(src, data)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _types(data: dict[str, Any], src: str) -> None:
    """Refuse values of the wrong type before anything reads them."""

    def need(ok: bool, key: str, what: str) -> None:
        check(ok, ConfigError(key, what, source=src))

    for key in ("profile", "first_divergence", "description"):
        if key in data:
            need(isinstance(data[key], str), key, f"must be a string, got {data[key]!r}")
    findings = data.get("findings", [])
    need(
        isinstance(findings, list) and all(isinstance(f, str) for f in findings),
        "findings",
        "must be a list of finding names",
    )
    need(isinstance(data.get("pnl", {}), dict), "pnl", "must be a table [pnl]")
    orders = data.get("orders", {})
    need(isinstance(orders, dict), "orders", "must be a table of [orders.ID] tables")
    for label, spec in orders.items():
        need(isinstance(spec, dict), f"orders.{label}", "must be a table [orders.ID]")
        reasons = spec.get("reasons", [])
        need(
            isinstance(reasons, list) and all(isinstance(r, str) for r in reasons),
            f"orders.{label}.reasons",
            "must be a list of reason codes",
        )
        if "qty" in spec:
            need(
                _is_number(spec["qty"]),
                f"orders.{label}.qty",
                f"must be a number, got {spec['qty']!r}",
            )
        if "note" in spec:
            need(isinstance(spec["note"], str), f"orders.{label}.note", "must be a string")


def check_expectations(out: Outcome, exp: Expectations) -> list[str]:
    """Every expectation that does not hold, as a line of text (empty: all hold)."""
    failures = []
    d = out.to_dict()
    orders = {o["order"]: o for o in d["orders"]}
    for label, spec in exp.data.get("orders", {}).items():
        o = orders.get(label)
        if o is None:
            failures.append(f"order {label}: not among the replayed decisions")
            continue
        if o["verdict"] != spec["verdict"]:
            failures.append(f"order {label}: expected {spec['verdict']}, got {o['verdict']}")
        missing = set(spec.get("reasons", [])) - set(o["reason_codes"])
        if missing:
            failures.append(f"order {label}: missing reason codes {sorted(missing)}")
        if "qty" in spec:
            sent = (o["would_send"] or {}).get("qty", 0.0)
            if abs(sent - spec["qty"]) > 1e-9:
                failures.append(f"order {label}: expected qty {spec['qty']}, got {sent}")
        if "note" in spec and not any(spec["note"] in n for n in o["notes"]):
            failures.append(f"order {label}: no note containing {spec['note']!r}")
    pnl = exp.data.get("pnl", {})
    tol = float(pnl.get("tolerance", 0.01))
    for key in ("actual", "with_guardrails"):
        if key in pnl and abs(d["pnl"][key]["gross"] - float(pnl[key])) > tol:
            failures.append(f"pnl {key}: expected {pnl[key]}, got {d['pnl'][key]['gross']}")
    want = exp.data.get("first_divergence")
    got = (d["first_divergence"] or {}).get("decision")
    if want is not None and want != got:
        failures.append(f"first divergence: expected {want}, got {got}")
    for finding in exp.data.get("findings", []):
        if not any(f.startswith(finding) for f in d["findings"]):
            failures.append(f"finding {finding} not reported (got {d['findings']})")
    return failures
