"""The learning loop's state, exported after a run and restored at the start of the next.

Seeds 001 and 003 run a learning loop that throttles a strategy under its win-rate floor and
quarantines it after losing streaks or a negative expectancy, until its shadow trades win
again. That judgement is about the strategy, not about one data file: a strategy quarantined
at the end of Monday's run must still be quarantined on Tuesday's bars. So a run's final
learning state can be written to a JSON file (``BacktestResult.learning_state().save(path)``,
``backstop backtest --learning-out FILE``) and laid over the fresh state of the next run
(``run_backtest(..., learning=LearningState.load(path))``, ``--learning-in FILE``).

Per strategy id it holds the health (NORMAL, THROTTLED, QUARANTINED), the closed trades,
wins and their net sum the rates are judged on, the win and loss streaks, the shadow wins
in a row, and its open shadow trades by symbol. The file names the profile and the
``learning.*`` settings it was made under and the strategy ids of its run; restoring it
into a run with another profile, other learning settings or another set of strategy ids is
a ConfigError naming the file and the key, as is a missing key or another version: a state
judged under other rules is never applied silently. An open shadow trade of a symbol the next
run has no bars for cannot settle there: the run says so in its warnings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backstop.domain.enums import StrategyHealth
from backstop.engine.core.guard import (
    SF_SUM_PNL,
    SH_ENTRY,
    SH_SIDE,
    SH_STOP,
    SH_TARGET,
    SI_CONSEC_LOSSES,
    SI_CONSEC_WINS,
    SI_HEALTH,
    SI_N_TRADES,
    SI_N_WINS,
    SI_SHADOW_WINS,
)
from backstop.engine.core.riskslots import RISK_KEYS
from backstop.engine.profile import RiskProfile
from backstop.errors import ConfigError

LEARNING_VERSION = 1
KIND = "backstop learning state"
# per strategy: file key -> strategy int column
_INTS = {
    "n_trades": SI_N_TRADES,
    "n_wins": SI_N_WINS,
    "consecutive_losses": SI_CONSEC_LOSSES,
    "consecutive_wins": SI_CONSEC_WINS,
    "shadow_wins": SI_SHADOW_WINS,
}
_SHADOW = {"side": SH_SIDE, "entry": SH_ENTRY, "stop": SH_STOP, "target": SH_TARGET}
_TOP = ("kind", "version", "profile", "settings", "strategies")
_STRATEGY = ("health", *_INTS, "sum_pnl", "shadows")


def _number(value: Any) -> bool:
    """A JSON number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def learning_settings(profile: RiskProfile) -> dict[str, Any]:
    """The ``learning.*`` settings in force: the rules a learning state was judged under."""
    return {k.key: profile.get(k.key) for k in RISK_KEYS if k.key.startswith("learning.")}


@dataclass(frozen=True, slots=True)
class LearningState:
    """One run's final learning state (``data`` is the file's JSON document)."""

    data: dict[str, Any]
    source: str = "learning state"

    # ---- export ----------------------------------------------------------------------------
    @classmethod
    def of_arrays(
        cls,
        arrays: tuple[np.ndarray, np.ndarray, np.ndarray],
        strategies: tuple[str, ...],
        symbols: tuple[str, ...],
        profile: RiskProfile,
    ) -> LearningState:
        """The state held in a run's final guard arrays (``si``, ``sf``, ``shadow``)."""
        si, sf, shadow = arrays
        out: dict[str, Any] = {}
        for k, name in enumerate(strategies):
            entry: dict[str, Any] = {"health": StrategyHealth(int(si[k, SI_HEALTH])).name}
            entry |= {key: int(si[k, col]) for key, col in _INTS.items()}
            entry["sum_pnl"] = float(sf[k, SF_SUM_PNL])
            entry["shadows"] = {
                sym: {key: float(shadow[k, s, col]) for key, col in _SHADOW.items()}
                for s, sym in enumerate(symbols)
                if shadow[k, s, SH_SIDE] != 0.0
            }
            out[name] = entry
        return cls(
            {
                "kind": KIND,
                "version": LEARNING_VERSION,
                "profile": profile.name,
                "settings": learning_settings(profile),
                "strategies": out,
            }
        )

    def save(self, path: str | Path) -> Path:
        """Write the state as JSON (sorted keys: the same state is the same bytes)."""
        path = Path(path)
        path.write_text(json.dumps(self.data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return path

    def digest(self) -> str:
        """Content hash: a run restored from a state is another run (its id says so)."""
        blob = json.dumps(self.data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    # ---- import ----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> LearningState:
        """Read a state file; its shape is checked here, its fit to a run by ``check_fits``."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("--learning-in", f"no such file: {path}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError("--learning-in", f"not JSON: {exc}", source=str(path)) from None
        except OSError as exc:  # a folder, no permission
            raise ConfigError(
                "--learning-in", f"cannot read: {exc.strerror}", source=str(path)
            ) from None
        state = cls(data, source=str(path))
        state._check_shape()
        return state

    def _fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(key, problem, source=self.source)

    def _check_shape(self) -> None:
        data = self.data
        if not isinstance(data, dict):
            raise self._fail("kind", "not a learning state (expected a JSON object)")
        for key in _TOP:
            if key not in data:
                raise self._fail(key, "missing")
        if data["kind"] != KIND:
            raise self._fail("kind", f"expected {KIND!r}, got {data['kind']!r}")
        if data["version"] != LEARNING_VERSION:
            raise self._fail(
                "version", f"{data['version']!r}: this backstop reads version {LEARNING_VERSION}"
            )
        if not isinstance(data["strategies"], dict) or not isinstance(data["settings"], dict):
            raise self._fail("strategies", "expected tables of strategies and settings")
        healths = [h.name for h in StrategyHealth]
        for name, entry in data["strategies"].items():
            for key in _STRATEGY:
                if not isinstance(entry, dict) or key not in entry:
                    raise self._fail(f"strategies.{name}.{key}", "missing")
            if entry["health"] not in healths:
                raise self._fail(
                    f"strategies.{name}.health",
                    f"expected one of {healths}, got {entry['health']!r}",
                )
            for key in _INTS:
                value = entry[key]
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise self._fail(f"strategies.{name}.{key}", f"expected a count, got {value!r}")
            if not _number(entry["sum_pnl"]):
                got = entry["sum_pnl"]
                raise self._fail(f"strategies.{name}.sum_pnl", f"expected a number, got {got!r}")
            if not isinstance(entry["shadows"], dict):
                raise self._fail(f"strategies.{name}.shadows", "expected a table by symbol")
            for sym, shadow in entry["shadows"].items():
                for key in _SHADOW:
                    where = f"strategies.{name}.shadows.{sym}.{key}"
                    if not isinstance(shadow, dict) or key not in shadow:
                        raise self._fail(where, "missing")
                    if not _number(shadow[key]):
                        raise self._fail(where, f"expected a number, got {shadow[key]!r}")

    def check_fits(self, profile: RiskProfile, strategies: tuple[str, ...]) -> None:
        """Refuse a state made under another profile, other learning settings or for another
        set of strategy ids (a ConfigError naming the file and the key that differs)."""
        if self.data["profile"] != profile.name:
            raise self._fail(
                "profile",
                f"the state was made under profile {self.data['profile']!r}, "
                f"this run's is {profile.name!r}",
            )
        now = learning_settings(profile)
        for key in sorted(set(now) | set(self.data["settings"])):
            was = self.data["settings"].get(key)
            if was != now.get(key):
                raise self._fail(
                    f"settings.{key}",
                    f"the state was judged under {was!r}, this run's profile has {now.get(key)!r}",
                )
        have = sorted(self.data["strategies"])
        if have != sorted(strategies):
            raise self._fail(
                "strategies",
                f"the state is of strategies {have}, this run's are {sorted(strategies)}",
            )

    def symbol_warnings(self, strategies: tuple[str, ...], symbols: tuple[str, ...]) -> list[str]:
        """Open shadow trades of symbols the run has no bars for: they cannot settle there,
        so they are not carried, and the run says so."""
        return [
            f"{self.source}: {name}'s open shadow trade on {sym} is not carried: "
            "this run has no bars of it"
            for name in strategies
            for sym in sorted(self.data["strategies"][name]["shadows"])
            if sym not in symbols
        ]

    def apply(self, g: Any, strategies: tuple[str, ...], symbols: tuple[str, ...]) -> None:
        """Lay the state over a fresh guard ``g`` (``check_fits`` passed)."""
        for k, name in enumerate(strategies):
            entry = self.data["strategies"][name]
            g.si[k, SI_HEALTH] = int(StrategyHealth[entry["health"]])
            for key, col in _INTS.items():
                g.si[k, col] = int(entry[key])
            g.sf[k, SF_SUM_PNL] = float(entry["sum_pnl"])
            for sym, shadow in sorted(entry["shadows"].items()):
                if sym in symbols:
                    s = symbols.index(sym)
                    for key, col in _SHADOW.items():
                        g.shadow[k, s, col] = float(shadow[key])
