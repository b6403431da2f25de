"""Where the resident engine lives, and what a CLI call must share with it to use it.

The directory is ``<home>/engine`` (0700, owned by the user): the socket (0600), ``engine.json``
(pid, build, settings) and the log.  Another user cannot reach the socket, and a directory
that others could enter is refused rather than used.  Unix sockets take paths of at most
~104 bytes, so a home too deep moves the directory under the temporary directory, named by
the user and a hash of the home.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from qtts.errors import BadInput
from qtts.settings import Settings

SOCKET_PATH_MAX = 100  # bytes; sun_path is 104 (macOS) or 108 (Linux) including the NUL

# What an engine must have been started with to serve a call: the settings that shape a load
# or the checks the engine makes for the caller.  Everything else travels with the request.
LOAD_SETTINGS = (
    "precision",
    "decoder_precision",
    "int8_kernel",
    "attn_implementation",
    "cpu_threads",
    "low_cpu_mem_usage",
    "weight_cache",
    "memory_check",
    "memory_limit_bytes",
    "offline",
    "fallback_model_id",
    "max_batch",
    "max_text_chars",
    "max_reference_s",
    "engine_idle_s",
)


@dataclass(frozen=True)
class Place:
    directory: Path

    @property
    def socket(self) -> Path:
        return self.directory / "engine.sock"

    @property
    def info(self) -> Path:
        return self.directory / "engine.json"

    @property
    def lock(self) -> Path:
        return self.directory / "start.lock"

    @property
    def log(self) -> Path:
        return self.directory / "engine.log"


def place_for(settings: Settings) -> Place:
    directory = settings.home.absolute() / "engine"
    if len(os.fsencode(directory / "engine.sock")) > SOCKET_PATH_MAX:
        digest = hashlib.sha256(os.fsencode(settings.home.absolute())).hexdigest()[:16]
        directory = Path(tempfile.gettempdir()) / f"qtts-engine-{os.getuid()}-{digest}"
    return Place(directory)


def ensure_private(place: Place) -> None:
    """Create the directory 0700, or check that an existing one is this user's and closed to
    others (a socket there must not be reachable, or replaceable, by anyone else)."""
    try:
        place.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = place.directory.lstat()
    except OSError as exc:
        raise BadInput(
            f"cannot create the engine's directory {place.directory}: {exc.strerror}",
            hint="check QTTS_HOME, or run with --no-engine",
        ) from exc
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise BadInput(
            f"{place.directory} is not a private directory of this user (mode "
            f"{stat.filemode(info.st_mode)}, owner uid {info.st_uid})",
            hint=f"remove it, or 'chmod 700 {place.directory}' if it is yours; --no-engine runs without it",
        )


def fingerprint(settings: Settings) -> dict[str, Any]:
    """The load-time settings an engine was started with (``LOAD_SETTINGS``), as JSON values."""
    return {name: _plain(getattr(settings, name)) for name in LOAD_SETTINGS}


def as_environment(settings: Settings) -> dict[str, str]:
    """The ``QTTS_*`` variables that make a child's ``Settings.resolve`` give these settings
    (the model, the home and every load-time setting)."""
    env = {f"QTTS_{name.upper()}": _env_value(getattr(settings, name)) for name in LOAD_SETTINGS}
    env["QTTS_HOME"] = str(settings.home.absolute())
    env["QTTS_MODEL_ID"] = settings.model_id
    return env


def differences(mine: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """The settings that differ, as ``name: theirs -> mine``."""
    return [f"{name} {theirs.get(name)!r} -> {mine.get(name)!r}" for name in mine if mine.get(name) != theirs.get(name)]


@lru_cache(maxsize=1)
def build_id() -> str:
    """This qtts: its version and a digest of its source files' sizes and times, so that an
    engine started before an upgrade (or an edit) is never taken for this one."""
    from importlib import metadata

    import qtts

    try:
        version = metadata.version("qtts")
    except metadata.PackageNotFoundError:
        version = "unknown"
    root = Path(qtts.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".cpp", ".h") and "__pycache__" not in path.parts:
            info = path.stat()
            digest.update(f"{path.relative_to(root)}:{info.st_size}:{info.st_mtime_ns};".encode())
    return f"{version}+{digest.hexdigest()[:12]}"


def read_info(place: Place) -> dict[str, Any] | None:
    try:
        return json.loads(place.info.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
