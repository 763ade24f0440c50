"""Turn raw field values (log text or JSON) into typed event fields, one rule per field name.

Every parser ends here, so a side, a confidence or a missing stop reads the same whether it
came from a bot's text log, backstop's JSONL log or a dialect constant. The rules are what
bots actually print: sides as ``BUY``/``sell``/``LONG``/``SHORT``/``1``/``-1`` (and IB's
``BOT``/``SLD``); confidences as ``0.36`` or ``50%``; ``None``/``null``/empty for a level
that was not set; thousands separators only in strict ``1,234.5`` grouping. NaN and
infinities are refused: an unreadable number is an error, never a silent NaN.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from backstop.replay.events import KINDS, Event

_NONE_WORDS: Final = frozenset({"", "none", "null", "nil"})
_NONE_FIRST: Final = "nN \t"
_SIDES: Final[dict[str, int]] = {
    "buy": 1,
    "long": 1,
    "b": 1,
    "bot": 1,
    "1": 1,
    "+1": 1,
    "sell": -1,
    "short": -1,
    "s": -1,
    "sld": -1,
    "-1": -1,
    "+": 1,
    "-": -1,
}
POSITION_KINDS: Final = frozenset({"bot_position", "broker_position"})
"""Event kinds whose ``qty`` is signed: a dialect may give the sign as a side word."""
POSITION_WORDS: Final[dict[str, int]] = {**_SIDES, "flat": 0, "0": 0}
"""Built-in side words of a position: long/buy/+ (+1), short/sell/- (-1), flat (0)."""
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")
_ORDER_TYPES: Final[dict[str, str]] = {
    "mkt": "market",
    "lmt": "limit",
    "stp": "stop",
    "stp lmt": "stop_limit",
    "stop limit": "stop_limit",
    "trail": "trailing_stop",
    "trailing stop": "trailing_stop",
}
_PATHS: Final = ("entry", "exit")


class FieldError(ValueError):
    """A field value that cannot be converted; parsers turn it into a ``DataError``."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


def apply_side_words(
    kind: str, values: dict[str, object], words: Mapping[str, int]
) -> dict[str, object]:
    """Turn a side word into the sign it stands for, for positions and for orders.

    ``words`` are a dialect's own side words (lower-case word -> +1, -1 or 0), tried before
    the built-in ones. For a position (``bot_position``/``broker_position``) the ``side``
    value signs ``qty``: ``SHORT 2`` is -2, ``FLAT`` is 0 (a quantity, if any, must be 0),
    and a signed quantity must agree with its word. For an order, signal or fill the word
    becomes ``side`` (+1/-1); a word meaning flat is refused there. Raises ``FieldError``.
    """
    raw = values.get("side")
    if kind not in POSITION_KINDS:
        sign = _word(raw, words)
        if sign is None:
            return values
        if sign == 0:
            raise FieldError("side", f"{raw!r} means flat: a position, not an order side")
        return {**values, "side": sign}
    out = {k: v for k, v in values.items() if k != "side"}
    if is_none(raw):
        return out
    sign = _word(raw, words)
    if sign is None:
        sign = _word(raw, POSITION_WORDS)
    if sign is None:
        known = sorted(set(words) | set(POSITION_WORDS))
        raise FieldError("side", f"not a position side: {raw!r} (known: {', '.join(known)})")
    qty = values.get("qty")
    if is_none(qty):
        if sign != 0:
            raise FieldError("qty", f"missing: a {raw} position needs a quantity")
        out["qty"] = 0.0
        return out
    try:
        number = to_float(qty)
    except ValueError as exc:
        raise FieldError("qty", str(exc)) from None
    if sign == 0 and number != 0:
        raise FieldError("qty", f"{raw} with quantity {number:g}: a flat position holds 0")
    plus = isinstance(qty, str) and qty.strip().startswith("+")
    if (number < 0 and sign > 0) or (plus and sign < 0):
        raise FieldError("qty", f"{raw} disagrees with the signed quantity {qty}")
    out["qty"] = sign * abs(number)
    return out


def _word(value: object, words: Mapping[str, int]) -> int | None:
    if not words:
        return None
    if isinstance(value, str):
        return words.get(value.strip().lower())
    if isinstance(value, int) and not isinstance(value, bool) and value in (1, -1, 0):
        return value
    return None


def is_none(value: object) -> bool:
    """Say whether ``value`` means "not set": ``None`` or a none-word such as ``"None"``."""
    if value is None:
        return True
    if type(value) is not str:
        return False
    # none-words are empty or start with n/N (after blanks): skip the rest cheaply (hot path)
    return (not value or value[0] in _NONE_FIRST) and value.strip().lower() in _NONE_WORDS


def to_float(value: object) -> float:
    """Read a finite number from a JSON number or a decimal string."""
    if type(value) is str:
        try:
            number = float(value)
        except ValueError:
            text = value.strip()
            if "," not in text or not _GROUPED.fullmatch(text):
                raise ValueError(f"not a number: {value!r}") from None
            number = float(text.replace(",", ""))
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {type(value).__name__} {value!r}")
    else:
        number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number


def to_positive(value: object) -> float:
    """Read an order or fill quantity: a finite number above zero."""
    number = to_float(value)
    if number <= 0:
        raise ValueError(f"must be > 0, got {value!r}")
    return number


def to_side(value: object) -> int:
    """Read a direction as +1 (buy/long) or -1 (sell/short)."""
    if isinstance(value, bool):
        raise ValueError(f"not a side: {value!r}")
    if isinstance(value, int | float) and value in (1, -1):
        return int(value)
    side = _SIDES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if side is None:
        raise ValueError(f"not a side: {value!r} (expected BUY/SELL/LONG/SHORT/1/-1/+/-)")
    return side


def to_confidence(value: object) -> float:
    """Read a confidence in 0..1 from ``0.36`` or a percentage such as ``"50%"``."""
    if isinstance(value, str) and value.strip().endswith("%"):
        number = to_float(value.strip()[:-1]) / 100.0
    else:
        number = to_float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"confidence must lie in 0..1 (or be a percentage), got {value!r}")
    return number


def to_text(value: object) -> str:
    """Read a non-empty string; numbers (an order id written as 14812) become their text."""
    if type(value) is str:
        text = value.strip()
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        raise ValueError(f"expected text, got {type(value).__name__} {value!r}")
    if not text:
        raise ValueError("must not be empty")
    return text


def to_upper(value: object) -> str:
    """Read a verdict word, upper-cased so ``wait`` and ``WAIT`` compare equal."""
    return to_text(value).upper()


def to_lower(value: object) -> str:
    """Read a status word, lower-cased (brokers disagree on case)."""
    return to_text(value).lower()


def to_order_type(value: object) -> str:
    """Read an order type as backstop names it (``MKT`` -> ``market``, ``STP LMT`` -> ...)."""
    text = to_text(value).lower()
    return _ORDER_TYPES.get(text, text.replace(" ", "_"))


def to_path(value: object) -> str:
    """Read a code path or signal intent: ``entry`` or ``exit``."""
    text = to_text(value).lower()
    if text not in _PATHS:
        raise ValueError(f"must be 'entry' or 'exit', got {value!r}")
    return text


Converter = Callable[[object], Any]

_BY_NAME: Final[dict[str, Converter]] = {
    "symbol": to_text,
    "side": to_side,
    "qty": to_positive,
    "price": to_float,
    "stop": to_float,
    "target": to_float,
    "limit_price": to_float,
    "stop_price": to_float,
    "fee": to_float,
    "amount": to_float,
    "equity": to_float,
    "cash": to_float,
    "stop_pct": to_float,
    "target_pct": to_float,
    "target_dollars": to_positive,
    "confidence": to_confidence,
    "verdict": to_upper,
    "status": to_lower,
    "order_type": to_order_type,
    "path": to_path,
    "intent": to_path,
    "message": to_text,
}
_OVERRIDES: Final[dict[tuple[str, str], Converter]] = {
    ("bot_position", "qty"): to_float,
    ("broker_position", "qty"): to_float,
}
NUMERIC_FIELDS: Final = frozenset(
    name for name, conv in _BY_NAME.items() if conv in (to_float, to_positive, to_confidence)
)
"""Fields whose JSONL value must be a JSON number (the JSONL reader checks the JSON type)."""


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    """How to read one field of one event kind."""

    name: str
    convert: Converter
    required: bool


def _specs(cls: type[Event]) -> tuple[FieldSpec, ...]:
    out = []
    for f in dataclasses.fields(cls):
        if f.name in ("ts", "source"):
            continue
        conv = _OVERRIDES.get((cls.kind, f.name), _BY_NAME.get(f.name, to_text))
        required = f.default is dataclasses.MISSING
        out.append(FieldSpec(f.name, conv, required))
    return tuple(out)


SPECS: Final[dict[str, tuple[FieldSpec, ...]]] = {kind: _specs(cls) for kind, cls in KINDS.items()}
"""Field specs of every event kind, in declaration order."""


def field_names(kind: str) -> frozenset[str]:
    """Name the fields an event of ``kind`` carries besides ``ts`` and ``source``."""
    return frozenset(spec.name for spec in SPECS[kind])


_CONVERTERS: Final[dict[str, dict[str, Converter]]] = {
    kind: {spec.name: spec.convert for spec in specs} for kind, specs in SPECS.items()
}
_REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    kind: tuple(spec.name for spec in specs if spec.required) for kind, specs in SPECS.items()
}


def build_event(kind: str, ts: int, source: str, values: Mapping[str, object]) -> Event:
    """Build an event of ``kind`` from raw ``values``, converting each field by its rule.

    Keys that are not fields of ``kind`` are ignored here (callers that must refuse them check
    with ``field_names``). Raises ``FieldError`` naming the first unreadable field (in the
    order of ``values``), else the first missing required one.
    """
    converters = _CONVERTERS[kind]
    kwargs: dict[str, Any] = {}
    for name, raw in values.items():
        convert = converters.get(name)
        if convert is None or is_none(raw):
            continue
        try:
            kwargs[name] = convert(raw)
        except ValueError as exc:
            raise FieldError(name, str(exc)) from None
    for name in _REQUIRED[kind]:
        if name not in kwargs:
            raise FieldError(name, "missing")
    return KINDS[kind](ts=ts, source=source, **kwargs)


def event_values(event: Event) -> dict[str, object]:
    """Return the fields of ``event`` besides ``ts``/``source``, ``None`` ones left out."""
    out: dict[str, object] = {}
    for spec in SPECS[event.kind]:
        value = getattr(event, spec.name)
        if value is not None:
            out[spec.name] = value
    return out


__all__ = [
    "NUMERIC_FIELDS",
    "POSITION_KINDS",
    "POSITION_WORDS",
    "SPECS",
    "FieldError",
    "FieldSpec",
    "apply_side_words",
    "build_event",
    "event_values",
    "field_names",
    "is_none",
    "to_confidence",
    "to_float",
    "to_side",
]
