"""The kill switch from outside the process: a request file in the run directory, or a signal.

Files in a run directory (each written whole or not at all, ``engine/atomic.py``):

- ``runner.json``: the marker the live runner writes when it starts (``write_run_marker``).
  A directory without it is not a run directory, and ``backstop kill`` refuses it.
- ``kill.json``: the current kill request: ``reason``, ``requested_ns`` (when it was
  written), ``source`` (``backstop kill``, ``SIGUSR1``, ``SIGTERM``) and, once the runner
  has acted on it, ``acknowledged_ns`` and ``action``. A pending request stays until it is
  acknowledged, so it survives a restart of the runner; an acknowledged one stays as the
  record of what happened.
- ``kill-history.jsonl``: earlier acknowledged requests, one JSON object a line, moved
  there when a new request replaces them.

The runner polls ``KillSwitch(run_dir).requested()`` and installs ``install_signal_handlers``
(SIGUSR1 and SIGTERM set the same flag; the handler only sets it, and the next
``requested()`` writes it to ``kill.json`` so it too survives a restart; SIGTERM then no longer
ends the process by itself: the runner exits once it has acted). When the runner has
cancelled, flattened and halted it calls ``acknowledge(request, action)``; journaling the
kill is the runner's job. Reads and writes of ``kill.json`` hold an exclusive ``flock`` on
``.kill.lock``, so a request written while the runner acknowledges another is never lost.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

from backstop.engine.atomic import replacing, sync
from backstop.engine.clock import Clock, LiveClock
from backstop.errors import ConfigError, check

MARKER = "runner.json"
REQUEST = "kill.json"
HISTORY = "kill-history.jsonl"
LOCK = ".kill.lock"
MARKER_KIND = "backstop-live-run"
MAX_REASON = 500
DEFAULT_REASON = "manual kill (backstop kill)"
SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


@dataclass(frozen=True, slots=True)
class KillRequest:
    """A kill request: why, when it was written (ns UTC), by what, and what the runner did."""

    reason: str
    requested_ns: int
    source: str
    acknowledged_ns: int | None = None
    action: str | None = None

    @property
    def pending(self) -> bool:
        """True until the runner has acknowledged it."""
        return self.acknowledged_ns is None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as the whole of ``path``, atomically (never half a file)."""
    with replacing(path, str(os.getpid())) as partial:
        partial.write_text(json.dumps(data, sort_keys=True, indent=1) + "\n", encoding="utf-8")


def write_run_marker(run_dir: str | Path, info: dict[str, Any]) -> Path:
    """Mark ``run_dir`` as a live run directory (the runner calls this when it starts).

    ``info`` holds what an operator wants to see (run id, strategy, mode, ...), JSON-able;
    the marker adds ``kind``. The folder is created if missing."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    check("kind" not in info, ConfigError("runner.kind", "is set by the marker itself"))
    path = run_dir / MARKER
    write_json(path, {"kind": MARKER_KIND, **info})
    return path


def read_run_marker(run_dir: str | Path) -> dict[str, Any]:
    """The marker of ``run_dir``; a ConfigError naming RUN_DIR when it is not a run directory."""
    run_dir = Path(run_dir)
    check(run_dir.exists(), ConfigError("RUN_DIR", f"{run_dir}: no such directory"))
    check(run_dir.is_dir(), ConfigError("RUN_DIR", f"{run_dir}: a file, not a run directory"))
    path = run_dir / MARKER
    check(
        path.is_file(),
        ConfigError(
            "RUN_DIR",
            f"{run_dir} is not a live run directory: it has no {MARKER} "
            "(the live runner writes it when it starts)",
        ),
    )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError("RUN_DIR", f"{path}: not a runner marker ({exc})") from None
    check(
        isinstance(data, dict) and data.get("kind") == MARKER_KIND,
        ConfigError("RUN_DIR", f"{path}: not a runner marker (kind is not {MARKER_KIND!r})"),
    )
    return data


def check_reason(reason: str) -> str:
    """A kill reason: one line of 1 to ``MAX_REASON`` characters."""
    text = reason.strip()
    check(bool(text), ConfigError("--reason", "must not be empty"))
    check("\n" not in text and "\r" not in text, ConfigError("--reason", "must be one line"))
    check(
        len(text) <= MAX_REASON,
        ConfigError("--reason", f"at most {MAX_REASON} characters, got {len(text)}"),
    )
    return text


class KillSwitch:
    """The kill switch of one run directory; ``clock`` stamps requests and acknowledgements
    (the runner passes its own; ``backstop kill`` uses the system clock)."""

    def __init__(self, run_dir: str | Path, clock: Clock | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.clock = clock or LiveClock()
        self._signalled: str | None = None
        self._previous: dict[int, Any] = {}

    # ---- requests ------------------------------------------------------------------------
    def request(self, reason: str = DEFAULT_REASON, source: str = "backstop kill") -> KillRequest:
        """Write a kill request unless one is pending; return the pending one either way
        (the first request's reason and time are kept)."""
        reason = check_reason(reason)
        read_run_marker(self.run_dir)
        with self._locked():
            current = self._read()
            if current is not None and current.pending:
                return current
            if current is not None:
                self._archive(current)
            new = KillRequest(reason, self.clock.now_ns(), source)
            write_json(self.run_dir / REQUEST, asdict(new))
            return new

    def requested(self) -> KillRequest | None:
        """The pending kill request, if any (a signal received since the last call is written
        down first). An unreadable ``kill.json`` counts as a request: failing safe."""
        if self._signalled is not None:
            got = self.request(f"signal {self._signalled} received", source=self._signalled)
            self._signalled = None  # cleared only once written down
            return got
        path = self.run_dir / REQUEST
        if not path.exists():
            return None
        with self._locked():
            current = self._read()
        return current if current is not None and current.pending else None

    def last(self) -> KillRequest | None:
        """The current request, pending or acknowledged (None when there never was one)."""
        with self._locked():
            return self._read()

    def acknowledge(self, request: KillRequest, action: str) -> KillRequest:
        """Record that the runner acted on ``request`` (``action``: what it did, one line).

        Acknowledging a request that is no longer the current one is refused: a newer
        request must stay pending."""
        action = action.strip().replace("\n", " ")
        check(bool(action), ConfigError("action", "say what the runner did"))
        with self._locked():
            current = self._read()
            same = current is not None and (current.requested_ns, current.reason) == (
                request.requested_ns,
                request.reason,
            )
            check(
                same and current is not None and current.pending,
                ConfigError(
                    "kill.json",
                    f"the request of {request.requested_ns} ns is not the pending one "
                    "(acknowledged already, or replaced)",
                ),
            )
            done = replace(request, acknowledged_ns=self.clock.now_ns(), action=action)
            write_json(self.run_dir / REQUEST, asdict(done))
            return done

    def history(self) -> list[KillRequest]:
        """Every request of this run directory, oldest first (the current one last)."""
        out: list[KillRequest] = []
        path = self.run_dir / HISTORY
        with self._locked():
            if path.exists():
                for line in path.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        out.append(KillRequest(**json.loads(line)))
            current = self._read()
        return out + ([current] if current is not None else [])

    # ---- signals -------------------------------------------------------------------------
    def install_signal_handlers(self, signals: tuple[int, ...] = SIGNALS) -> None:
        """SIGUSR1 and SIGTERM set the kill flag (call from the main thread). The handler
        only records the signal; ``requested()`` turns it into a written request."""
        for signum in signals:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def restore_signal_handlers(self) -> None:
        """Put back the handlers ``install_signal_handlers`` replaced."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._signalled is None:
            self._signalled = signal.Signals(signum).name

    # ---- files ---------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _read(self) -> KillRequest | None:
        path = self.run_dir / REQUEST
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
            request = KillRequest(**data)
            check(
                isinstance(request.reason, str)
                and isinstance(request.requested_ns, int)
                and isinstance(request.source, str),
                ConfigError(REQUEST, "fields of the wrong type"),
            )
            return request
        except (ValueError, TypeError, ConfigError) as exc:
            # stamped with the file's own time, so the same request is seen on every poll
            return KillRequest(
                f"{REQUEST} unreadable ({type(exc).__name__}): treated as a kill request",
                path.stat().st_mtime_ns,
                "unreadable kill.json",
            )

    def _archive(self, done: KillRequest) -> None:
        path = self.run_dir / HISTORY
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(done), sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        sync(self.run_dir)
