"""Driving the real ``qtts`` CLI as separate processes with the resident engine on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

from qtts.settings import Settings


class EngineShell:
    """A shell for one home: ``run`` is a ``qtts`` command as a user types it."""

    def __init__(self, home: Path, model: Path, **env: str) -> None:
        self.home = home
        self.env = {**os.environ, "QTTS_HOME": str(home), "QTTS_MODEL_ID": str(model), "HF_HUB_OFFLINE": "1", **env}
        self.env.pop("QTTS_ENGINE", None)  # on, as for a user

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "qtts", *args]

    def run(self, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), env={**self.env, **env}, capture_output=True, timeout=timeout)

    def hello(self, voice: str, out: Path, **env: str) -> subprocess.CompletedProcess:
        """A short 'qtts speak' of a library voice into ``out``."""
        return self.run("speak", "--voice-id", voice, "--text", "Hi there.", "--max-frames", "8", "--out", str(out),
                        **env)

    def popen(self, *args: str, **env: str) -> subprocess.Popen:
        return subprocess.Popen(
            self.command(*args), env={**self.env, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def json(self, *args: str, **env: str) -> dict:
        result = self.run(*args, "--json", **env)
        assert result.returncode == 0, result.stderr.decode()
        return json.loads(result.stdout)

    @property
    def place(self):  # noqa: ANN201
        from qtts.resident.place import place_for

        return place_for(Settings.resolve({"home": str(self.home)}, environ={}))

    def engine_pid(self) -> int | None:
        with suppress(OSError, ValueError):
            return int(json.loads(self.place.info.read_text())["pid"])
        return None

    def stop(self) -> None:
        pid = self.engine_pid()
        self.run("engine", "stop", timeout=60)
        if pid:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done != pid
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    with suppress(OSError):
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4] + " "
    return True


def wait_for(condition, timeout: float = 30.0, interval: float = 0.1) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
