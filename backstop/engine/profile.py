"""Risk profiles: TOML files of guardrail settings, validated on load, with shipped presets.

A profile is a set of ``section.key = value`` settings from the one key table in
``core/riskslots.py``; anything it leaves out takes the table's default (and a limit without a
default is off). Unknown keys and out-of-range values are errors naming the key and the file.
The presets in ``backstop/profiles/`` encode the source documents' rules; ``research`` is the
permissive default of a plain backtest.

A profile file looks like::

    [profile]
    name = "micro-futures-constitution"
    description = "..."

    [entry]
    require_protection = true
    max_stop_ticks = 12

    [strategy.kevin.risk]        # keys for the signals of strategy_id "kevin" only
    drawdown_halt_pct = 0.20

    [strategy."*".risk]          # keys every strategy holds as its own (judged on its own
    circuit_loss_pct = 0.05      # P&L); a named table's keys win over them

    [sectors]                    # for risk.max_sector_pct: symbols the instruments leave
    tech = ["AAPL", "MSFT"]      # without a sector
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from backstop.engine.core.riskslots import N_RISK, RISK_KEYS, SLOT, RiskKey
from backstop.errors import ConfigError, check

_BY_KEY: dict[str, RiskKey] = {k.key: k for k in RISK_KEYS}
# the sections a ``[strategy.NAME.SECTION]`` table may set: what the decision of one signal
# reads (exits, the kill switch and the learning loop act on the account's positions)
STRATEGY_SECTIONS = ("entry", "sizer", "risk", "orders", "execution")
CALENDAR_CHOICES = ("auto", "XNYS", "CMES", "ALWAYS")
EVERY_STRATEGY = "*"  # ``[strategy."*".SECTION]``: keys every strategy holds as its own


def preset_names() -> tuple[str, ...]:
    """Names of the shipped presets (file stems under ``backstop/profiles``)."""
    folder = resources.files("backstop") / "profiles"
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml")))


@dataclass(frozen=True, slots=True)
class RiskProfile:
    """Validated guardrail settings: only the keys a profile sets are stored."""

    name: str = "research"
    description: str = "permissive defaults of a plain backtest"
    settings: tuple[tuple[str, Any], ...] = ()
    calendar: str = "auto"
    source: str | None = field(default=None, compare=False)
    # per strategy id: the keys its ``[strategy.NAME.SECTION]`` tables set over the account's
    strategies: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    # (symbol, sector) from the ``[sectors]`` table: ``tech = ["AAPL", "MSFT"]``
    sectors: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for key, value in self.settings:
            _validate(key, value, self.source)
        for name, settings in self.strategies:
            for key, value in settings:
                check(
                    key.split(".", 1)[0] in STRATEGY_SECTIONS,
                    ConfigError(
                        f"strategy.{name}.{key}",
                        f"not a per-strategy key (per strategy: {list(STRATEGY_SECTIONS)} "
                        "sections only; exits, kill switch and learning act on the account)",
                        source=self.source,
                    ),
                )
                _validate(key, value, self.source)
        check(
            self.calendar in CALENDAR_CHOICES,
            ConfigError(
                "profile.calendar",
                f"must be one of {list(CALENDAR_CHOICES)}, got {self.calendar!r}",
                source=self.source,
            ),
        )

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str | None = None) -> RiskProfile:
        """Build from a parsed TOML document (sections of keys)."""
        meta = data.get("profile", {})
        check(
            isinstance(meta, dict),
            ConfigError("profile", "must be a table", source=source),
        )
        for key in meta:
            check(
                key in ("name", "description", "calendar"),
                ConfigError(
                    f"profile.{key}",
                    "unknown key (known: name, description, calendar)",
                    source=source,
                ),
            )
        settings: dict[str, Any] = {}
        for section, table in data.items():
            if section in ("profile", "strategy", "sectors"):
                continue
            check(
                isinstance(table, dict),
                ConfigError(section, "must be a table of keys", source=source),
            )
            for key, value in table.items():
                settings[f"{section}.{key}"] = value
        return cls(
            name=str(meta.get("name", "custom")),
            description=str(meta.get("description", "")),
            settings=tuple(sorted(settings.items())),
            calendar=str(meta.get("calendar", "auto")),
            source=source,
            strategies=_strategy_tables(data.get("strategy", {}), source),
            sectors=_sector_table(data.get("sectors", {}), source),
        )

    @classmethod
    def from_toml(cls, path: str | Path) -> RiskProfile:
        """Load and validate a profile file."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("profile", f"no such profile file: {path}") from None
        except IsADirectoryError:
            raise ConfigError(
                "profile", "is a directory, not a profile file", source=str(path)
            ) from None
        except UnicodeDecodeError as exc:
            raise ConfigError(
                "profile",
                f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
                source=str(path),
            ) from None
        except OSError as exc:
            raise ConfigError("profile", f"cannot read: {exc.strerror}", source=str(path)) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("profile", f"not valid TOML: {exc}", source=str(path)) from None
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def preset(cls, name: str) -> RiskProfile:
        """A shipped preset by name (see ``preset_names()``)."""
        names = preset_names()
        check(
            name in names,
            ConfigError("profile", f"unknown preset {name!r} (presets: {list(names)})"),
        )
        text = (resources.files("backstop") / "profiles" / f"{name}.toml").read_text()
        return cls.from_mapping(tomllib.loads(text), source=f"profiles/{name}.toml")

    @classmethod
    def load(cls, name_or_path: str | Path | None) -> RiskProfile:
        """A preset name, a TOML path, or None for the research defaults."""
        if name_or_path is None:
            return cls()
        if isinstance(name_or_path, Path) or str(name_or_path).endswith(".toml"):
            return cls.from_toml(name_or_path)
        return cls.preset(str(name_or_path))

    def with_settings(self, overrides: dict[str, Any]) -> RiskProfile:
        """This profile with some keys set (e.g. from ``--risk key=value``)."""
        merged = dict(self.settings)
        merged.update(overrides)
        return RiskProfile(
            name=self.name,
            description=self.description,
            settings=tuple(sorted(merged.items())),
            calendar=self.calendar,
            source=self.source,
            strategies=self.strategies,
            sectors=self.sectors,
        )

    # ---- views ---------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        """The value in force for ``key`` (the table's default when the profile is silent)."""
        check(key in _BY_KEY, ConfigError(key, "unknown risk key"))
        return dict(self.settings).get(key, _BY_KEY[key].default)

    def array(self, strategies: tuple[str, ...] = ()) -> np.ndarray:
        """The float64 array the kernels read (NaN: limit off).

        Without per-strategy tables: the account's ``N_RISK`` slots. With them, and the run's
        strategy ids in engine order, one block per strategy follows the account's: the
        account's values with that strategy's own keys over them (``strategy_rp_nb``).
        """
        out = self._block(dict(self.settings))
        if not self.strategies:
            return out
        check(
            bool(strategies),
            ConfigError(
                "strategy", "per-strategy limits need the run's strategy ids", source=self.source
            ),
        )
        own = dict(self.strategies)
        every = dict(own.get(EVERY_STRATEGY, ()))
        blocks = [out]
        for name in strategies:
            blocks.append(self._block(dict(self.settings) | every | dict(own.get(name, ()))))
        return np.concatenate(blocks)

    def all_settings(self) -> dict[str, Any]:
        """Every setting as one flat mapping (what the journal records): the account's keys,
        ``strategy.NAME.section.key`` for strategy tables, ``sectors.NAME`` for sectors."""
        out: dict[str, Any] = dict(self.settings)
        for name, items in self.strategies:
            out.update({f"strategy.{name}.{key}": value for key, value in items})
        for symbol, sector in self.sectors:
            out.setdefault(f"sectors.{sector}", []).append(symbol)
        return out

    def every_strategy(self, key: str) -> tuple[str, Any]:
        """Where ``key``'s value for every strategy comes from, and the value: the
        ``[strategy."*".*]`` table's when it sets the key, else the account's."""
        every = dict(dict(self.strategies).get(EVERY_STRATEGY, ()))
        if key in every:
            return f'strategy."{EVERY_STRATEGY}".{key}', every[key]
        return key, self.get(key)

    def has_own_limits(self, strategy: str) -> bool:
        """Whether ``strategy`` has a ``[strategy.NAME.*]`` table of its own (or the profile
        a ``[strategy."*".*]`` table, which every strategy holds as its own)."""
        return any(name in (strategy, EVERY_STRATEGY) for name, _ in self.strategies)

    def _block(self, settings: dict[str, Any]) -> np.ndarray:
        out = np.full(N_RISK, np.nan, dtype=np.float64)
        for spec in RISK_KEYS:
            value = settings.get(spec.key, spec.default)
            if value is None:
                continue
            if spec.kind == "choice":
                out[SLOT[spec.key]] = float(spec.choices.index(value))
            else:
                out[SLOT[spec.key]] = float(value)
        return out

    def content_hash(self) -> str:
        """Stable hash of the settings in force (keys the run in the journal)."""
        body: dict[str, Any] = {"settings": dict(self.settings), "calendar": self.calendar}
        if self.strategies:  # absent when empty: the hashes of existing profiles stay
            body["strategies"] = {name: dict(keys) for name, keys in self.strategies}
        if self.sectors:
            body["sectors"] = dict(self.sectors)
        blob = json.dumps(body, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def uses(self, *keys: str) -> bool:
        """True when any of ``keys`` is on (not None / False) for the account or, in its
        ``[strategy.NAME.*]`` table, for any strategy."""
        if any(self.get(k) not in (None, False) for k in keys):
            return True
        return any(
            key in keys and value not in (None, False)
            for _, items in self.strategies
            for key, value in items
        )


def _strategy_tables(
    data: Any, source: str | None
) -> tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]:
    """``[strategy.NAME.SECTION]`` tables -> per strategy id, its sorted ``section.key`` items."""
    check(isinstance(data, dict), ConfigError("strategy", "must be a table", source=source))
    out = []
    for name in sorted(data):
        sections = data[name]
        check(
            isinstance(sections, dict) and bool(sections),
            ConfigError(
                f"strategy.{name}", "must hold tables like [strategy.NAME.risk]", source=source
            ),
        )
        items: dict[str, Any] = {}
        for section, table in sections.items():
            check(
                isinstance(table, dict),
                ConfigError(f"strategy.{name}.{section}", "must be a table", source=source),
            )
            for key, value in table.items():
                items[f"{section}.{key}"] = value
        out.append((str(name), tuple(sorted(items.items()))))
    return tuple(out)


def _sector_table(data: Any, source: str | None) -> tuple[tuple[str, str], ...]:
    """``[sectors]`` (``SECTOR = ["SYM", ...]``) -> sorted (symbol, sector) pairs; a symbol in
    two sectors is an error naming both."""
    check(isinstance(data, dict), ConfigError("sectors", "must be a table", source=source))
    where: dict[str, str] = {}
    for sector, symbols in data.items():
        key = f"sectors.{sector}"
        check(
            isinstance(symbols, list) and all(isinstance(x, str) and x for x in symbols),
            ConfigError(key, f"expected a list of symbols, got {symbols!r}", source=source),
        )
        for symbol in symbols:
            check(
                symbol not in where,
                ConfigError(
                    key, f"{symbol} is already in sector {where.get(symbol)!r}", source=source
                ),
            )
            where[symbol] = str(sector)
    return tuple(sorted(where.items()))


def split_key_values(items: list[str], option: str, form: str = "KEY=VALUE") -> dict[str, str]:
    """``KEY=TEXT`` command-line items -> ``{key: text}`` in the order given; an item
    without ``=`` or key, or a key given twice, is a ConfigError naming it (one parser for
    ``--param``, ``--set``, ``--risk-grid`` and the sweep's grid)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        check(bool(sep and key), ConfigError(option, f"expected {form}, got {item!r}"))
        if key in out:
            raise ConfigError(key, f"given twice in {option} ({out[key]!r} and {value.strip()!r})")
        out[key] = value.strip()
    return out


def parse_setting(raw: str) -> tuple[str, Any]:
    """``section.key=value`` from the command line, typed by the key table."""
    check("=" in raw, ConfigError(raw, "expected section.key=value"))
    key, text = raw.split("=", 1)
    key = key.strip()
    check(key in _BY_KEY, ConfigError(key, f"unknown risk key (known: {sorted(_BY_KEY)})"))
    spec = _BY_KEY[key]
    text = text.strip()
    if spec.kind == "bool":
        check(
            text.lower() in ("true", "false", "1", "0"),
            ConfigError(key, f"expected true or false, got {text!r}"),
        )
        return key, text.lower() in ("true", "1")
    if spec.kind == "choice":
        return key, text
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(key, f"expected a number, got {text!r}") from None
    return key, int(number) if spec.kind == "int" and number.is_integer() else number


def _validate(key: str, value: Any, source: str | None) -> None:
    check(
        key in _BY_KEY,
        ConfigError(key, "unknown risk key (see the README's profile table)", source=source),
    )
    spec = _BY_KEY[key]
    if spec.kind == "bool":
        check(
            isinstance(value, bool),
            ConfigError(key, f"expected true or false, got {value!r}", source=source),
        )
        return
    if spec.kind == "choice":
        check(
            value in spec.choices,
            ConfigError(key, f"must be one of {list(spec.choices)}, got {value!r}", source=source),
        )
        return
    ok_type = isinstance(value, int | float) and not isinstance(value, bool)
    if spec.kind == "int":
        ok_type = ok_type and float(value).is_integer()
    check(
        ok_type and math.isfinite(float(value)),
        ConfigError(key, f"expected a finite {spec.kind}, got {value!r}", source=source),
    )
    check(
        spec.lo <= float(value) <= spec.hi,
        ConfigError(key, f"must be in [{spec.lo}, {spec.hi}], got {value!r}", source=source),
    )
