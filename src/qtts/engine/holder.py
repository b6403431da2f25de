"""The models a server or worker process serves: loaded once each (each with its continuous-
batching loop, ``generation.batcher``), and say which are ready.

The first model (``settings.model_id``) is the default: it starts loading with the process,
and until it is loaded ``get()`` raises ``NotReady`` (GET /ready says when).  The others
(``settings.more_model_ids``) are loaded on their first request, which waits for the load;
each load goes through the engine's memory pre-check, and one that does not fit beside
the models already loaded is a ``NoRoomForModel`` (HTTP 503) with the memory hint, while
the loaded models keep serving.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from qtts.errors import BadInput, MemoryShortage, NoRoomForModel, NotReady, QttsError
from qtts.hub import ResolvedModel, expand_alias, resolve_model
from qtts.settings import Settings

if TYPE_CHECKING:
    from qtts.engine.core import Engine

log = logging.getLogger(__name__)

# OpenAI's model names, and qtts's generic one: requests naming them go to the default model.
GENERIC_MODEL_NAMES = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "qwen3-tts")


class _Slot:
    """One model: its engine once loaded, or its load error."""

    def __init__(self) -> None:
        self.engine: "Engine | None" = None
        self.error: QttsError | None = None
        self.loaded = threading.Event()
        self.thread: threading.Thread | None = None


class Engines:
    """``get(model)`` returns a loaded engine; ``pick(name)`` maps a request's model name
    (an alias, a repo id, a directory, or one of OpenAI's names) to a served model id."""

    def __init__(self, settings: Settings, engine: "Engine | None" = None, open_models: bool = False) -> None:
        self.settings = settings
        # open: any model a request names is served (loaded on first use): the resident engine,
        # which serves whatever its CLI calls ask for; else only the configured ones.
        self.open_models = open_models
        self.model_ids: tuple[str, ...] = tuple(dict.fromkeys(expand_alias(m) for m in settings.served_model_ids))
        self.default = self.model_ids[0]
        self._slots = {model_id: _Slot() for model_id in self.model_ids}
        self._lock = threading.Lock()
        self._resolved: dict[str, ResolvedModel] = {}
        if engine is not None:
            engine.enable_batching(settings.max_batch)
            slot = self._slots[self.default]
            slot.engine = engine
            slot.loaded.set()

    # -- naming -----------------------------------------------------------------------------
    def pick(self, requested: str | None) -> str:
        """The served model a request names; None and OpenAI's names mean the default."""
        if not requested or requested in GENERIC_MODEL_NAMES:
            return self.default
        wanted = expand_alias(requested)
        if wanted in self._slots:
            return wanted
        for model_id, slot in self._slots.items():  # a loaded model's id as its engine spells it
            if slot.engine is not None and slot.engine.model.model_id == wanted:
                return model_id
        if self.open_models:
            resolved = resolve_model(wanted)  # a model that is not there fails here, not in a load
            with self._lock:
                self._slots.setdefault(wanted, _Slot())
                self._resolved.setdefault(wanted, resolved)
                self.model_ids = tuple(dict.fromkeys((*self.model_ids, wanted)))
            return wanted
        raise BadInput(f"unknown model {requested!r}: it is not served here",
                       hint=f"use one of: {', '.join((*self.model_ids, *GENERIC_MODEL_NAMES))}; "
                       "start 'qtts serve' with one more --model-id to serve it")

    def resolved(self, model_id: str) -> ResolvedModel:
        """A served model's facts (kind, speakers, languages) from its config: no load."""
        if model_id not in self._resolved:
            slot = self._slots[model_id]
            self._resolved[model_id] = slot.engine.model if slot.engine is not None else resolve_model(model_id)
        return self._resolved[model_id]

    def first_of_kind(self, tts_model_type: str) -> str | None:
        """The first served model of a kind (e.g. the Base model that clones uploaded voices)."""
        return next((m for m in self.model_ids if self.resolved(m).tts_model_type == tts_model_type), None)

    # -- loading ----------------------------------------------------------------------------
    def start_loading(self, model_id: str | None = None) -> None:
        model_id = model_id or self.default
        slot = self._slots[model_id]
        with self._lock:
            if slot.loaded.is_set() or slot.thread is not None:
                return
            slot.thread = threading.Thread(target=self._load, args=(model_id, slot),
                                           name=f"engine-loader-{len(self.loaded())}",
                                           daemon=True)
            slot.thread.start()

    def _load(self, model_id: str, slot: _Slot) -> None:
        from qtts.engine import memory
        from qtts.engine.core import Engine

        settings = self.settings
        if model_id != self.default:
            # Never a silent substitute for a model a request named: no fallback model.
            settings = settings.replace(fallback_model_id="")
            if settings.memory_limit_bytes > 0:  # a configured limit is for all of the process's models
                used = sum(memory.estimate(e.model.path, settings.precision, 0, settings.batch_size).need_bytes
                           for e in self.loaded())
                settings = settings.replace(memory_limit_bytes=max(1, settings.memory_limit_bytes - used))
        try:
            engine = Engine.load(settings, model_id)
            engine.enable_batching(settings.max_batch)  # concurrent requests share each frame
            slot.engine = engine
            log.info("model %s loaded in %.1f s", model_id, engine.load_seconds)
        except MemoryShortage as exc:
            log.error("model %s does not fit: %s", model_id, exc.message)
            slot.error = exc if model_id == self.default else NoRoomForModel(
                f"{exc.message} beside the {len(self.loaded())} model(s) already loaded", hint=exc.hint)
        except QttsError as exc:
            log.error("model %s failed to load: %s (%s)", model_id, exc.message, exc.hint)
            slot.error = exc
        except Exception as exc:  # keep the server answering; /ready reports the failure
            log.exception("model %s failed to load", model_id)
            slot.error = QttsError(f"model failed to load: {type(exc).__name__}: {exc}", hint="see the server log")
        finally:
            slot.loaded.set()

    # -- state ------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """The default model is loaded."""
        return self._slots[self.default].engine is not None

    @property
    def error(self) -> QttsError | None:
        """The default model's load error, if it failed."""
        return self._slots[self.default].error

    def batch_stats(self) -> dict[str, dict[str, int]]:
        """Each loaded model's continuous batch: streams generating, waiting, the cap."""
        return {e.model.model_id: e.frame_loop.stats() for e in self.loaded() if e.frame_loop is not None}

    def loading(self) -> list[str]:
        """The models whose load is under way."""
        return [m for m, slot in list(self._slots.items()) if slot.thread is not None and not slot.loaded.is_set()]

    def loaded(self) -> list["Engine"]:
        return [slot.engine for slot in list(self._slots.values()) if slot.engine is not None]

    def get(self, model_id: str | None = None) -> "Engine":
        """The loaded engine.  The default model: ``NotReady`` while it loads.  Another
        model: loaded now if it is not yet (the caller waits; run it off the event loop)."""
        model_id = model_id or self.default
        slot = self._slots[model_id]
        if slot.engine is not None:
            return slot.engine
        if slot.error is not None:
            raise slot.error
        if model_id == self.default:
            self.start_loading(model_id)
            raise NotReady("the model is still loading", hint="retry shortly; GET /ready answers 200 once it is loaded")
        return self.wait(model_id)

    def wait(self, model_id: str | None = None, timeout: float | None = None) -> "Engine":
        model_id = model_id or self.default
        self.start_loading(model_id)
        slot = self._slots[model_id]
        slot.loaded.wait(timeout)
        if slot.engine is not None:
            return slot.engine
        if slot.error is not None:
            raise slot.error
        raise NotReady(f"{model_id} is still loading", hint="retry shortly")
