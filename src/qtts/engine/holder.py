"""Load an engine once per process, in the background, and say whether it is ready."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from qtts.errors import NotReady, QttsError
from qtts.settings import Settings

if TYPE_CHECKING:
    from qtts.engine.core import Engine

log = logging.getLogger(__name__)


class EngineHolder:
    """Holds the process's one engine.  ``get()`` returns it or raises ``NotReady`` (or the
    load error); ``wait()`` blocks until loaded.  Pass ``engine`` to use an existing one."""

    def __init__(self, settings: Settings, engine: "Engine | None" = None) -> None:
        self.settings = settings
        self._engine = engine
        self._error: QttsError | None = None
        self._lock = threading.Lock()
        self._loaded = threading.Event()
        if engine is not None:
            self._loaded.set()
        self._thread: threading.Thread | None = None

    def start_loading(self) -> None:
        with self._lock:
            if self._loaded.is_set() or self._thread is not None:
                return
            self._thread = threading.Thread(target=self._load, name="engine-loader", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        from qtts.engine.core import Engine

        try:
            self._engine = Engine.load(self.settings)
            log.info("model %s loaded in %.1f s", self._engine.model.model_id, self._engine.load_seconds)
        except QttsError as exc:
            log.error("model failed to load: %s (%s)", exc.message, exc.hint)
            self._error = exc
        except Exception as exc:  # keep the server answering; /ready reports the failure
            log.exception("model failed to load")
            self._error = QttsError(f"model failed to load: {type(exc).__name__}: {exc}", hint="see the server log")
        finally:
            self._loaded.set()

    @property
    def ready(self) -> bool:
        return self._engine is not None

    @property
    def error(self) -> QttsError | None:
        return self._error

    def get(self) -> "Engine":
        if self._engine is not None:
            return self._engine
        if self._error is not None:
            raise self._error
        self.start_loading()
        raise NotReady("the model is still loading", hint="retry shortly; GET /ready answers 200 once it is loaded")

    def wait(self, timeout: float | None = None) -> "Engine":
        self.start_loading()
        self._loaded.wait(timeout)
        return self.get()
