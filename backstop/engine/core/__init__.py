"""The compiled decision core: small numba kernels over arrays (DESIGN.md).

numba's on-disk cache checks only the file that defines a function, so a kernel that inlined
a callee from another file would keep running the old callee after that file changed. On
import, this package compares a hash of every core source with the stamp left by the last
import and, when they differ, removes backstop's cached kernels before any is loaded.

Caching policy: kernels that Python calls (the drivers' entry points) are ``@kernel``
(``ahead.py``: ``cache=True``, and compiled ahead of time at install);
kernels only other kernels call are ``@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)``
and not cached on their own. A cached caller's object code already holds them (numba links a
callee's code into its caller), so a warm process compiles nothing, and a cold one skips
emitting and writing ~60 objects that no process would load (a quarter of the cold compile).

Reference counts: numba increfs a kernel's array and struct arguments on entry and decrefs
them on exit, and every array it reads from a struct (an atomic each). The state structs
(book, portfolio, verdicts, guard, market) are borrowed instead: their type counts no
references and their fields are views without an owner; Python's proxy owns both
(``backstop.engine.core.state`` has the rules). Kernels on the per-signal and per-fill paths
take those structs or scalars rather than arrays, and have a single exit (an early
``return`` blocks LLVM's pruning of the pairs that remain). bench/PROFILE.md has the
measurements.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_PACKAGE = _HERE.parents[1]
# Modules outside core/ and strategies/ that kernels take values from (enum codes): they are
# compiled into the kernels, so a change to them must recompile too.
# tests/test_ahead_guard.py checks that every module the kernel sources import is covered.
_KERNEL_DEPENDENCIES = (_PACKAGE / "domain" / "enums.py", _PACKAGE / "errors.py")


def kernel_sources() -> tuple[Path, ...]:
    """Every file whose content the compiled kernels depend on, in a fixed order: all of
    core/, the simulator's and the strategies' modules that define kernels (the matcher, the
    fused loop: ``brokers/sim/``), and the modules they take values from
    (a strategy's plumbing, a loader or a helper, compiles nothing and is left out, so
    editing it keeps the caches and the ahead-of-time build)."""
    files = sorted(_HERE.glob("*.py"))
    for folder in (_PACKAGE / "brokers" / "sim", _PACKAGE / "strategies"):
        files += [p for p in sorted(folder.glob("*.py")) if _defines_kernels(p)]
    return (*files, *_KERNEL_DEPENDENCIES)


def _defines_kernels(path: Path) -> bool:
    text = path.read_text()
    return "@kernel" in text or "@njit" in text


@cache
def _sources_digest() -> str:
    h = hashlib.sha256()
    for path in kernel_sources():
        h.update(path.relative_to(_PACKAGE).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _drop_stale_kernel_cache() -> None:
    stamp = _HERE / "__pycache__" / "kernels.stamp"
    digest = _sources_digest()
    try:
        if stamp.exists() and stamp.read_text() == digest:
            return
        for pattern in ("*.nbi", "*.nbc"):
            for cached in _PACKAGE.rglob(pattern):
                cached.unlink(missing_ok=True)
        stamp.parent.mkdir(exist_ok=True)
        stamp.write_text(digest)
    except OSError:
        # A read-only install cannot hold a numba cache either: nothing stale to drop.
        return


_drop_stale_kernel_cache()
