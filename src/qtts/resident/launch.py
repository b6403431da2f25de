"""Find this user's resident engine for a home, or start it.

Under an exclusive lock (``start.lock``), so that two CLI calls racing to start it start one:
ask the socket for the engine's status; a socket nobody answers on is stale and removed; an
engine of another qtts build, or started with other load-time settings, is replaced when it
is idle and refused with a hint when it is busy (never silently reused).  A new engine is a
``qtts engine run`` process in its own session, its output in the place's log; the call
goes on as soon as its socket answers (the model loads meanwhile).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from qtts.errors import ServerUnavailable
from qtts.resident.place import Place, as_environment, build_id, differences, ensure_private, fingerprint, place_for
from qtts.settings import Settings

START_TIMEOUT_S = 180.0  # from spawning the process to its socket answering (a slow or emulated CPU: minutes)
BUSY_PATIENCE_S = 60.0  # an engine busy importing or loading answers slowly: how long to keep asking
STOP_TIMEOUT_S = 15.0
PROBE_TIMEOUT_S = 5.0


class _StartFailed(Exception):
    """No engine could be started: ``connect`` raises it as ``ServerUnavailable``;
    ``try_connect`` lets the caller run in its own process instead."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass(frozen=True)
class Running:
    """An engine that answers: where, and what it said of itself."""

    place: Place
    status: dict[str, Any]
    started_now: bool


def http_client(place: Place, timeout_s: float | None) -> Any:
    import httpx

    return httpx.Client(
        transport=httpx.HTTPTransport(uds=str(place.socket)),
        base_url="http://qtts-engine",
        timeout=httpx.Timeout(timeout_s, connect=PROBE_TIMEOUT_S),
    )


def probe(place: Place, patience_s: float = BUSY_PATIENCE_S) -> dict[str, Any] | None:
    """The engine's status, or None when nobody answers on the socket (a stale socket is
    removed).  An engine that accepts but answers slowly (importing or loading on a slow
    CPU) is asked again for ``patience_s``.  Permission errors and the like propagate: they
    are not "no engine"."""
    import httpx

    deadline = time.monotonic() + patience_s
    while place.socket.exists():
        try:
            with http_client(place, PROBE_TIMEOUT_S) as client:
                response = client.get("/v1/engine")
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
            with suppress(FileNotFoundError):
                place.socket.unlink()
            return None
        except httpx.TimeoutException as exc:
            if time.monotonic() < deadline:
                continue
            raise ServerUnavailable(
                f"the qtts engine at {place.socket} does not answer",
                hint="'qtts engine stop' (or kill the pid in engine.json), or run with --no-engine",
            ) from exc
        return response.json() if response.status_code == 200 else None
    return None


def find(settings: Settings) -> Running | None:
    """The running engine, as it is (no start, no replacement): for ``qtts engine status``."""
    place = place_for(settings)
    if not place.directory.exists():
        return None
    ensure_private(place)
    status = probe(place)
    return Running(place, status, False) if status is not None else None


def connect(settings: Settings, say: Callable[[str], None]) -> Running:
    """The engine for these settings: found, replaced or started."""
    try:
        return _connect(settings, say)
    except _StartFailed as exc:
        raise ServerUnavailable(exc.message, hint=exc.hint) from exc


def try_connect(settings: Settings, say: Callable[[str], None]) -> Running | None:
    """Like ``connect``, but None (said on stderr) when no engine could be started."""
    try:
        return _connect(settings, say)
    except _StartFailed as exc:
        say(f"the qtts engine could not start ({exc.message}); running in this process")
        return None


def _connect(settings: Settings, say: Callable[[str], None]) -> Running:
    place = place_for(settings)
    ensure_private(place)
    with _locked(place):
        status = probe(place)
        if status is not None:
            reason = mismatch(settings, status)
            if reason is None:
                return Running(place, status, False)
            if status.get("active"):
                raise ServerUnavailable(
                    f"the running qtts engine (pid {status.get('pid')}) is busy and differs: {reason}",
                    hint="wait for its calls to end, run with --no-engine, or 'qtts engine stop'",
                )
            say(f"replacing the qtts engine (pid {status.get('pid')}): {reason}")
            _stop(place, status)
        process = _spawn(settings, place)
        say(
            f"starting the qtts engine in the background (pid {process.pid}): it keeps the model loaded for the next "
            f"calls and exits after {settings.engine_idle_s:.0f} s idle; 'qtts engine stop' ends it, --no-engine "
            "skips it"
        )
        return Running(place, _wait_until_answering(place, process), True)


def mismatch(settings: Settings, status: dict[str, Any]) -> str | None:
    """Why an engine cannot serve these settings, or None."""
    if status.get("build") != build_id():
        return f"another qtts build ({status.get('build')}; this is {build_id()})"
    changed = differences(fingerprint(settings), status.get("settings") or {})
    return f"other settings ({', '.join(changed)})" if changed else None


def stop(settings: Settings) -> dict[str, Any] | None:
    """Stop the running engine (after its calls end); its status, or None if none ran."""
    running = find(settings)
    if running is None:
        return None
    with _locked(running.place):
        _stop(running.place, running.status)
    return running.status


def start(settings: Settings, say: Callable[[str], None]) -> Running:
    return connect(settings, say)


def _stop(place: Place, status: dict[str, Any]) -> None:
    import httpx

    pid = int(status.get("pid") or 0)
    with suppress(httpx.HTTPError), http_client(place, PROBE_TIMEOUT_S) as client:
        client.post("/v1/engine/stop")
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while pid and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid and _alive(pid):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with suppress(FileNotFoundError):
        place.socket.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with suppress(ChildProcessError):  # our own child: reap it if it has exited
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def _spawn(settings: Settings, place: Place) -> subprocess.Popen:
    env = {**os.environ, **as_environment(settings)}
    env.pop("QTTS_ENGINE", None)
    log = open(place.log, "ab")  # noqa: SIM115 (the child keeps it)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "qtts", "engine", "run"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
            close_fds=True,
            cwd=place.directory,
        )
    finally:
        log.close()


def _wait_until_answering(place: Place, process: subprocess.Popen) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            status = probe(place, patience_s=0)
        except ServerUnavailable:  # accepted, but still busy starting
            status = None
        if status is not None:
            return status
        if process.poll() is not None:
            raise _StartFailed(
                f"the qtts engine exited while starting (code {process.returncode}): {_log_tail(place)}",
                hint=f"see {place.log}; --no-engine runs in this process",
            )
        time.sleep(0.05)
    process.kill()
    raise _StartFailed(
        f"the qtts engine did not answer within {START_TIMEOUT_S:.0f} s",
        hint=f"see {place.log}; --no-engine runs in this process",
    )


def _log_tail(place: Place, lines: int = 3) -> str:
    try:
        text = place.log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(text[-lines:]) or "no output"


@contextmanager
def _locked(place: Place) -> Iterator[None]:
    import fcntl

    with open(place.lock, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
