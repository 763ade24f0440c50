"""The kill switch from outside: the run-directory marker, requests that survive a restart
until acknowledged, signals, and ``backstop kill`` against a real runner-like child process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from backstop import cli
from backstop.engine.clock import SimClock
from backstop.errors import ConfigError
from backstop.runners.live.killswitch import (
    KillRequest,
    KillSwitch,
    read_run_marker,
    write_run_marker,
)

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_780_670_465_000_000_000


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    write_run_marker(run, {"run_id": "r-1", "mode": "paper"})
    return run


def test_marker_is_written_whole_and_read_back(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    assert read_run_marker(run) == {"kind": "backstop-live-run", "run_id": "r-1", "mode": "paper"}
    assert sorted(p.name for p in run.iterdir()) == ["runner.json"]  # no partial file left


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (lambda d: None, "no such directory"),
        (lambda d: d.write_text("x"), "a file, not a run directory"),
        (lambda d: d.mkdir(), "is not a live run directory: it has no runner.json"),
        (
            lambda d: (d.mkdir(), (d / "runner.json").write_text("{not json")),
            "not a runner marker",
        ),
        (
            lambda d: (d.mkdir(), (d / "runner.json").write_text('{"kind": "other"}')),
            "kind is not 'backstop-live-run'",
        ),
    ],
)
def test_not_a_run_directory_is_a_config_error_naming_run_dir(
    tmp_path: Path, setup, words: str
) -> None:
    folder = tmp_path / "x"
    setup(folder)
    with pytest.raises(ConfigError) as err:
        KillSwitch(folder).request("stop")
    assert err.value.key == "RUN_DIR" and words in str(err.value)
    assert not (folder / "kill.json").exists()


def test_a_request_stays_pending_across_a_restart_until_acknowledged(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    clock = SimClock(T0)
    assert KillSwitch(run, clock).requested() is None
    first = KillSwitch(run, clock).request("desk says stop")
    assert first == KillRequest("desk says stop", T0, "backstop kill")
    clock.advance_to(T0 + 5)
    # a second request while one is pending keeps the first (reason and time)
    assert KillSwitch(run, clock).request("again") == first
    # a restarted runner (a new object) sees the same pending request
    runner = KillSwitch(run, clock)
    assert runner.requested() == first
    clock.advance_to(T0 + 9)
    done = runner.acknowledge(first, "cancelled 2 orders, flattened AAPL, HALTED")
    assert done == KillRequest(
        "desk says stop", T0, "backstop kill", T0 + 9, "cancelled 2 orders, flattened AAPL, HALTED"
    )
    assert KillSwitch(run, clock).requested() is None
    assert KillSwitch(run, clock).last() == done  # kept as the record
    assert json.loads((run / "kill.json").read_text())["acknowledged_ns"] == T0 + 9


def test_a_new_request_after_an_acknowledged_one_keeps_the_old_in_history(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    clock = SimClock(T0)
    switch = KillSwitch(run, clock)
    done = switch.acknowledge(switch.request("one"), "halted")
    clock.advance_to(T0 + 100)
    second = switch.request("two")
    assert second == KillRequest("two", T0 + 100, "backstop kill")
    assert switch.requested() == second
    assert switch.history() == [done, second]
    # the first can no longer be acknowledged: the newer request must stay pending
    with pytest.raises(ConfigError) as err:
        switch.acknowledge(done, "again")
    assert err.value.key == "kill.json" and "not the pending one" in str(err.value)
    assert switch.requested() == second


@pytest.mark.parametrize(
    ("reason", "words"),
    [("", "must not be empty"), ("a\nb", "must be one line"), ("x" * 501, "at most 500")],
)
def test_bad_reasons_are_refused_naming_the_option(tmp_path: Path, reason: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        KillSwitch(_run_dir(tmp_path)).request(reason)
    assert err.value.key == "--reason" and words in str(err.value)


def test_an_unreadable_request_file_counts_as_a_request(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    (run / "kill.json").write_text("{truncated")
    switch = KillSwitch(run, SimClock(T0))
    pending = switch.requested()
    assert pending is not None and pending.source == "unreadable kill.json"
    assert pending.reason == "kill.json unreadable (JSONDecodeError): treated as a kill request"
    assert switch.requested() == pending  # the same request on every poll
    done = switch.acknowledge(pending, "halted")
    assert switch.requested() is None and switch.last() == done


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGTERM])
def test_a_signal_sets_the_flag_and_is_written_down(tmp_path: Path, signum: int) -> None:
    run = _run_dir(tmp_path)
    before = signal.getsignal(signum)
    switch = KillSwitch(run, SimClock(T0))
    switch.install_signal_handlers()
    try:
        os.kill(os.getpid(), signum)
        got = switch.requested()
    finally:
        switch.restore_signal_handlers()
    name = signal.Signals(signum).name
    assert got == KillRequest(f"signal {name} received", T0, name)
    assert signal.getsignal(signum) == before
    assert KillSwitch(run).requested() == got  # on disk: survives a restart


def test_a_signal_that_cannot_be_written_yet_is_kept_for_the_next_poll(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    marker = (run / "runner.json").read_text()
    (run / "runner.json").unlink()
    switch = KillSwitch(run, SimClock(T0))
    switch.install_signal_handlers((signal.SIGUSR1,))
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        with pytest.raises(ConfigError):
            switch.requested()
        (run / "runner.json").write_text(marker)
        got = switch.requested()
    finally:
        switch.restore_signal_handlers()
    assert got == KillRequest("signal SIGUSR1 received", T0, "SIGUSR1")


_CHILD = textwrap.dedent(
    """
    import sys, time
    from backstop.runners.live.killswitch import KillSwitch, write_run_marker
    run = sys.argv[1]
    write_run_marker(run, {"run_id": "child"})
    switch = KillSwitch(run)
    switch.install_signal_handlers()
    print("ready", flush=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = switch.requested()
        if got is not None:
            switch.acknowledge(got, "flattened, HALTED")
            print(got.source, "|", got.reason, flush=True)
            sys.exit(0)
        time.sleep(0.02)
    sys.exit(3)
    """
)


def _child(run: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(run)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def test_backstop_kill_reaches_a_running_process(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    proc = _child(run)
    try:
        assert cli.main(["kill", str(run), "--reason", "desk says stop"]) == 0
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait(timeout=5)
    assert proc.returncode == 0
    assert out == "backstop kill | desk says stop\n"
    printed = capsys.readouterr().out
    assert printed.startswith("kill requested for run child at ")
    assert printed.endswith(
        "(desk says stop); the runner cancels working orders, flattens as "
        "its profile says and halts on its next poll\n"
    )
    last = KillSwitch(run).last()
    assert last is not None and last.action == "flattened, HALTED" and not last.pending


def test_sigterm_to_the_runner_is_a_kill_request(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _child(run)
    try:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait(timeout=5)
    assert (proc.returncode, out) == (0, "SIGTERM | signal SIGTERM received\n")


def test_cli_kill_twice_says_the_request_is_still_pending(tmp_path: Path, capsys) -> None:
    run = _run_dir(tmp_path)
    assert cli.main(["kill", str(run)]) == 0
    first = capsys.readouterr().out
    assert "(manual kill (backstop kill))" in first
    assert cli.main(["kill", str(run), "--reason", "later"]) == 0
    second = capsys.readouterr().out
    assert second.startswith("kill already requested for run r-1 at ")
    assert second.endswith(
        "(manual kill (backstop kill)); the runner has not acknowledged it yet\n"
    )


def test_cli_kill_on_a_folder_that_is_not_a_run_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "backstop.cli", "kill", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        f"backstop: error: RUN_DIR: {tmp_path} is not a live run directory: it has no "
        "runner.json (the live runner writes it when it starts)\n"
    )
    assert not (tmp_path / "kill.json").exists()
