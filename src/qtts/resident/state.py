"""What the resident engine knows of itself: calls in flight, idle time, why it should stop.

Kept apart from ``process`` so that the engine's routes (``server.routes_engine``) can use
it without importing the process that serves them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from qtts.resident.place import Place, build_id, fingerprint
from qtts.settings import Settings

if TYPE_CHECKING:
    from qtts.engine.holder import Engines


def _import_seconds() -> float:
    from qtts.engine.upstream import import_seconds

    return import_seconds()


class EngineState:
    def __init__(self, settings: Settings, place: Place, boot_s: float) -> None:
        self.settings = settings
        self.place = place
        self.boot_s = boot_s  # from the process's start to its first line of qtts code
        self.started = time.time()
        self.stop_requested = threading.Event()
        self._lock = threading.Lock()
        self._active = 0
        self._last = time.monotonic()

    @contextmanager
    def busy(self) -> Iterator[None]:
        """A call in flight: the engine does not count as idle until it ends."""
        with self._lock:
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                self._last = time.monotonic()

    @property
    def active(self) -> int:
        return self._active

    def idle_s(self) -> float:
        with self._lock:
            return 0.0 if self._active else time.monotonic() - self._last

    def should_exit(self) -> bool:
        return self.stop_requested.is_set() or self.idle_s() > self.settings.engine_idle_s

    def startup_s(self, load_seconds: float) -> float:
        """What a process of its own would spend before a model's first frame: starting
        Python and qtts, importing torch and qwen_tts, then loading (``load_seconds``)."""
        return round(self.boot_s + _import_seconds() + load_seconds, 3)

    def status(self, engines: "Engines") -> dict[str, Any]:
        import psutil

        return {
            "pid": os.getpid(),
            "build": build_id(),
            "settings": fingerprint(self.settings),
            "socket": str(self.place.socket),
            "log": str(self.place.log),
            "uptime_s": round(time.time() - self.started, 1),
            "idle_s": round(self.idle_s(), 1),
            "idle_exit_s": self.settings.engine_idle_s,
            "active": self._active,
            "rss_bytes": psutil.Process().memory_info().rss,
            "boot_s": round(self.boot_s, 3),
            "import_s": round(_import_seconds(), 3),
            "models": [
                {
                    "model_id": e.model.model_id,
                    "load_seconds": round(e.load_seconds, 3),
                    "startup_s": self.startup_s(e.load_seconds),
                }
                for e in engines.loaded()
            ],
            "loading": engines.loading(),
        }
