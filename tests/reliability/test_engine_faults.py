"""The resident engine's faults, with real processes: killed mid-call, a stale socket, two
calls racing to start it, another user (each counted in the tally as a fault scenario)."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from tests.integration.resident_helpers import EngineShell, alive

pytestmark = pytest.mark.tally("fault")

LONG_TEXT = " ".join(f"This is sentence number {n} of a long story." for n in range(12))


def test_engine_killed_mid_call_fails_clearly_and_leaves_no_file(
    engine_shell: EngineShell, engine_voice: str, tmp_path: Path
) -> None:
    out = tmp_path / "story.wav"
    process = engine_shell.popen(
        "speak",
        "--voice-id",
        engine_voice,
        "--text",
        LONG_TEXT,
        "--split-max-chars",
        "50",
        "--batch-size",
        "1",
        "--max-frames",
        "300",
        "--out",
        str(out),
    )
    seen = b""
    while b"chunk 1/" not in seen:  # the engine is mid-call: one chunk done, more to come
        line = process.stderr.readline()
        assert line, seen.decode()
        seen += line
    pid = engine_shell.engine_pid()
    os.kill(pid, signal.SIGKILL)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 8, (seen + err).decode()
    assert f"error: the qtts engine (pid {pid}) stopped during the call".encode() in err
    assert b"hint: run the command again" in err and b"Traceback" not in err
    assert list(tmp_path.glob("story*")) == []  # no file, no temporary file
    # The next call starts a new engine over the dead one's socket.
    again = engine_shell.hello(engine_voice, out)
    assert again.returncode == 0 and b"starting the qtts engine" in again.stderr and out.exists()


def test_stale_socket_is_replaced(engine_shell: EngineShell, engine_voice: str, tmp_path: Path) -> None:
    engine_shell.stop()
    place = engine_shell.place
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(place.socket))  # a socket file nobody listens on: a crashed engine's
    dead.close()
    assert place.socket.exists()
    result = engine_shell.hello(engine_voice, tmp_path / "a.wav")
    assert result.returncode == 0, result.stderr.decode()
    assert b"starting the qtts engine" in result.stderr and alive(engine_shell.engine_pid())


def test_two_calls_racing_start_one_engine_and_both_are_served(
    engine_shell: EngineShell, engine_voice: str, tmp_path: Path
) -> None:
    engine_shell.stop()
    calls = [
        engine_shell.popen(
            "speak",
            "--voice-id",
            engine_voice,
            "--text",
            f"Call number {n} is here.",
            "--max-frames",
            "16",
            "--json",
            "--out",
            str(tmp_path / f"{n}.wav"),
        )
        for n in range(2)
    ]
    results = [(c.wait(timeout=180), *c.communicate()) for c in calls]
    assert [code for code, _, _ in results] == [0, 0], [err.decode() for _, _, err in results]
    assert sum(b"starting the qtts engine" in err for _, _, err in results) == 1
    import json

    pids = {json.loads(out)["engine"]["pid"] for _, out, _ in results}
    assert pids == {engine_shell.engine_pid()}


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_another_user_cannot_connect(engine_shell: EngineShell, engine_voice: str) -> None:
    path = str(engine_shell.place.socket)
    assert _connect_as(65534, path) == "refused"  # nobody
    assert _connect_as(os.geteuid(), path) == "connected"  # the same attempt as the engine's user
    assert alive(engine_shell.engine_pid())


def _connect_as(uid: int, path: str) -> str:
    """Connect to the socket from a child process running as ``uid`` (a fork: the other
    user may not be able to read this interpreter's files)."""
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        code = 1
        try:
            os.setgid(uid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            code = 0
        except PermissionError:
            code = 13
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    return {0: "connected", 13: "refused"}.get(os.waitstatus_to_exitcode(status), "failed")
