"""The compiled core built ahead of time: the kernels Python calls, compiled at install.

numba compiles a kernel the first time a process calls it; the whole core takes 20-25 s on
a 2-core machine, once per machine and after every change to a kernel source (its on-disk
cache then holds the object code). The install does that work instead: ``build_ahead`` runs a
few small example backtests and replays, which record the argument types of
every kernel declared with ``@kernel``, then compiles each of those kernels for those types
with numba's ahead-of-time compiler (``numba.pycc``) into one extension module, ``_ahead``,
next to this file, with a manifest of what it holds (``_ahead.manifest``).

At import, ``@kernel`` gives each kernel's dispatcher the extension's functions as overloads
for exactly the recorded types: numba's own type dispatch calls them, and a call with any
other types compiles as before. Same source, same compiler, same results (a test compares
the journals of the two). The extension is used only when its manifest says it was built
from the kernel sources on disk now, for this CPU and with this numba; otherwise, or with
``BACKSTOP_AOT=0`` in the environment, every kernel is compiled just in time as before, and
``status()`` says why. ``python -m backstop.runners.build_ahead`` rebuilds it in place.
"""

from __future__ import annotations

import importlib
import os
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from numba import njit

from backstop.engine.core import _HERE, _sources_digest

MODULE = "_ahead"
MANIFEST = _HERE / f"{MODULE}.manifest"
FAILED = _HERE / f"{MODULE}.failed"
ENV_SWITCH = "BACKSTOP_AOT"
# the numba internals the attachment needs (checked before use)
_NUMBA_API = ("_insert",)


@dataclass(slots=True)
class _State:
    """What this process made of the ahead-of-time build (loaded once, on first use)."""

    looked: bool = False
    loaded: bool = False
    reason: str = ""
    module: Any = None
    entries: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    attached: int = 0
    # numba interns types through weak references and numbers each new instance: the
    # attached argument types must stay alive, or the next instance gets another number
    # and the dispatcher no longer recognises the call
    types: list[tuple[Any, ...]] = field(default_factory=list)


_state = _State()
#: every ``@kernel`` dispatcher, by "module:qualname" (what the build compiles)
KERNELS: dict[str, Any] = {}


def host_cpu() -> tuple[str, str]:
    """The CPU name and feature string numba compiles for on this machine."""
    from llvmlite import binding

    return binding.get_host_cpu_name(), binding.get_host_cpu_features().flatten()


def _key(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}:{fn.__qualname__}"


def _fit(manifest: dict[str, Any]) -> str | None:
    """Why ``manifest`` does not fit this process (None when it does)."""
    import numba

    if manifest.get("digest") != _sources_digest():
        return "it was built from other kernel sources (python -m backstop.runners.build_ahead)"
    if manifest.get("cpu") != host_cpu():
        return "it was built for another CPU"
    if manifest.get("numba") != numba.__version__:
        return f"it was built with numba {manifest.get('numba')}, not {numba.__version__}"
    if manifest.get("python") != sys.version_info[:2]:
        return "it was built for another Python"
    return None


def _load() -> None:
    """Find the extension and its manifest once; keep them when they fit this process.

    Nothing here may break ``import backstop``: any failure (a missing or changed numba
    API, an unreadable manifest, an extension that does not load) leaves every kernel to the
    just-in-time compiler, with the reason in ``status()``."""
    if _state.looked:
        return
    _state.looked = True
    try:
        _find()
    except Exception as exc:  # the build is an optimisation: never a reason to fail
        _give_up(f"its manifest or extension could not be used ({type(exc).__name__}: {exc})")


def _give_up(why: str) -> None:
    _state.loaded = False
    _state.reason = f"ahead-of-time core not used: {why}; kernels compile just in time"


def _find() -> None:
    if os.environ.get(ENV_SWITCH, "1") == "0":
        _state.reason = f"{ENV_SWITCH}=0: every kernel is compiled just in time"
        return
    if not MANIFEST.exists():
        why = FAILED.read_text().strip() if FAILED.exists() else "it was not built"
        _state.reason = f"no ahead-of-time core: {why}"
        return
    try:
        manifest = pickle.loads(MANIFEST.read_bytes())
    except (OSError, EOFError, pickle.UnpicklingError) as exc:
        _state.reason = f"ahead-of-time core not used: unreadable {MANIFEST.name} ({exc})"
        return
    misfit = _fit(manifest)
    if misfit is not None:
        _state.reason = f"ahead-of-time core not used: {misfit}"
        return
    from numba.core.dispatcher import Dispatcher

    missing = [name for name in _NUMBA_API if not hasattr(Dispatcher, name)]
    if missing:
        _give_up(f"numba's Dispatcher has no {', '.join(missing)} (a numba API changed)")
        return
    try:
        _state.module = importlib.import_module(f"{__package__}.{MODULE}")
    except ImportError as exc:
        _state.reason = f"ahead-of-time core not used: its extension does not load ({exc})"
        return
    _state.entries = manifest["entries"]
    _state.loaded = True
    _state.reason = (
        f"ahead-of-time core: {sum(map(len, _state.entries.values()))} kernel signatures, "
        f"built in {manifest['build_seconds']:.1f} s"
    )


def _attach(dispatcher: Any, key: str) -> None:
    """Give ``dispatcher`` the extension's functions for the argument types built for it.

    Uses numba internals (``Dispatcher._insert``, a type's ``_code``): if they fail, the
    kernels attached so far keep their correct overloads and the rest compile just in time."""
    try:
        for symbol, argtypes in _state.entries.get(key, ()):
            types = pickle.loads(argtypes)
            _state.types.append(types)
            dispatcher._insert([t._code for t in types], getattr(_state.module, symbol))
            _state.attached += 1
    except Exception as exc:
        _give_up(f"attaching {key} failed ({type(exc).__name__}: {exc})")


def kernel(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """``@njit(cache=True)`` for a kernel that Python calls, served by the ahead-of-time
    build when it holds the call's argument types."""

    def wrap(f: Callable[..., Any]) -> Any:
        dispatcher = njit(cache=True, **options)(f)
        key = _key(f)
        KERNELS[key] = dispatcher
        _load()
        if _state.loaded:
            _attach(dispatcher, key)
        return dispatcher

    return wrap if fn is None else wrap(fn)


def status() -> str:
    """One line: whether this process runs the ahead-of-time core, and if not, why."""
    _load()
    if _state.loaded:
        return f"{_state.reason}; {_state.attached} attached"
    return _state.reason


def in_use() -> bool:
    """Whether this process runs the ahead-of-time core."""
    _load()
    return _state.loaded
