"""Real servers for the service tests: uvicorn in a thread, redis-server and qtts processes.

Everything listens on 127.0.0.1 only, on a free port, and is stopped by the context manager.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

INSTALL_HINTS = {
    "redis-server": "Debian: ./install.sh installs it (apt-get install redis-server); macOS: brew install redis",
    "postgresql": "Debian: ./install.sh installs it (apt-get install postgresql); macOS: brew install postgresql",
    "chromium": "Debian: ./install.sh installs it (apt-get install chromium); macOS: brew install --cask chromium",
    "espeak-ng": "Debian: ./install.sh installs it (apt-get install espeak-ng); macOS: brew install espeak-ng",
}


def require(program: str, found: object) -> None:
    """Fail the test with one line saying what to install (no traceback) when ``found`` is falsy."""
    import pytest

    if not found:
        pytest.fail(f"{program} is not installed; {INSTALL_HINTS[program]}", pytrace=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.1, what: str = "condition"):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@contextlib.contextmanager
def running_app(app) -> Iterator[str]:  # noqa: ANN001
    """Serve ``app`` with uvicorn in a thread; yield its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(url), timeout=30, what="uvicorn to start")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    require("redis-server", binary)
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        wait_until(lambda: _pings(client), timeout=20, what="redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=20)


def _pings(client) -> bool:  # noqa: ANN001
    try:
        return bool(client.ping())
    except Exception:
        return False


def qtts_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``qtts ARGS`` as a separate process (as a user would), logging to ``log``."""
    handle = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "qtts", *args], env={**os.environ, **env}, stdout=handle,
                            stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def postgres_server(directory: Path) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (Debian's postgresql package), run as the
    'postgres' system user when the tests run as root (initdb refuses root)."""
    import glob
    import pwd

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin")) or sorted(glob.glob("/opt/homebrew/opt/postgresql*/bin"))
    require("postgresql", bins)
    bin_dir = Path(bins[-1])
    if os.geteuid() == 0:  # pytest's temp dirs are private to root: use one 'postgres' can enter
        import tempfile

        directory = Path(tempfile.mkdtemp(prefix="qtts-pg-"))
    data = directory / "pgdata"
    data.mkdir(parents=True)
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (directory, data):
            os.chown(path, user.pw_uid, user.pw_gid)
        os.chmod(directory, 0o755)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(data / "log"), "-w", "-o",
                    f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"], check=True,
                   stdout=subprocess.DEVNULL)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(directory, ignore_errors=True)


def process_env(settings, **extra) -> dict[str, str]:  # noqa: ANN001
    """The environment of a 'qtts serve' or 'qtts worker' process sharing ``settings``'s queue."""
    env = {"QTTS_HOME": str(settings.home), "QTTS_MODEL_ID": settings.model_id, "QTTS_JOB_LEASE_S": "2",
           "HF_HUB_OFFLINE": "1"}
    return {**env, **{k: str(v) for k, v in extra.items()}}


def all_final(store, ids):  # noqa: ANN001, ANN201
    """The jobs once every one has finished (succeeded, failed or cancelled), else None."""
    jobs = [store.get(i) for i in ids]
    return jobs if all(j.status in ("succeeded", "failed", "cancelled") for j in jobs) else None
