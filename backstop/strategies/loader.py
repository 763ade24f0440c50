"""A strategy function named on the command line: ``path/to/file.py:fn`` or ``package.module:fn``.

The file is run as a module of its own (not put on ``sys.path``, so it shadows nothing); a
dotted name is imported as usual. What cannot be loaded is a ``ConfigError`` naming the file
(or module) and the function: the file or module missing, a syntax error (with its line), a
missing import, no such function, or a name that is not a function. An error the file's own
code raises while it runs is a bug in that file and keeps its traceback.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backstop.errors import ConfigError

KEY = "strategy"


def load_function(spec: str) -> Callable[..., Any]:
    """The function ``spec`` (``file.py:fn`` or ``package.module:fn``) names."""
    where, sep, name = spec.rpartition(":")
    if not sep or not where.strip() or not name.strip().isidentifier():
        raise ConfigError(
            KEY, f"{spec!r}: expected path/to/file.py:function or package.module:function"
        )
    name = name.strip()
    if where.endswith(".py") or "/" in where or "\\" in where:
        module, label = _from_file(Path(where)), where
    else:
        module, label = _from_module(where), where
    if not hasattr(module, name):
        found = sorted(  # the functions it defines, not the ones it imports
            n
            for n, v in vars(module).items()
            if inspect.isfunction(v) and v.__module__ == module.__name__ and n[:1] != "_"
        )
        raise ConfigError(
            KEY,
            f"{label} has no function {name!r} (functions there: {', '.join(found) or 'none'})",
        )
    fn = getattr(module, name)
    if not callable(fn) or inspect.isclass(fn):
        raise ConfigError(KEY, f"{label}:{name} is a {type(fn).__name__}, not a function of bars")
    return fn  # type: ignore[no-any-return]


def _from_file(path: Path) -> Any:
    """Run ``path`` as a module named after its resolved location (stable, unique)."""
    if not path.is_file():
        raise ConfigError(KEY, f"{path}: no such file")
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode(), usedforsecurity=False).hexdigest()[:12]
    module_name = f"backstop_user_{resolved.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise ConfigError(KEY, f"{path}: cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise ConfigError(KEY, f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except ImportError as exc:
        sys.modules.pop(module_name, None)
        raise ConfigError(KEY, f"{path}: cannot import what it needs: {exc}") from None
    return module


def _from_module(dotted: str) -> Any:
    """Import ``dotted``; a module that is not there names itself."""
    try:
        return importlib.import_module(dotted)
    except SyntaxError as exc:
        raise ConfigError(
            KEY, f"{dotted} ({exc.filename}:{exc.lineno}): syntax error: {exc.msg}"
        ) from None
    except ImportError as exc:
        raise ConfigError(KEY, f"cannot import module {dotted!r}: {exc}") from None
