"""What the routes share: the app's state (``AppState``, found with ``state_of``) and the
answer after a change of state.  Its own module, so that the routes never import the app
that includes them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from qtts.engine.holder import Engines
from qtts.jobs.queue import JobQueue
from qtts.settings import Settings
from qtts.voices import VoiceLibrary

log = logging.getLogger(__name__)


@dataclass
class AppState:
    settings: Settings
    engines: Engines
    library: VoiceLibrary
    queue: JobQueue | None  # None in the resident engine, which runs no jobs
    stop: threading.Event = field(default_factory=threading.Event)
    worker_thread: threading.Thread | None = None


def state_of(request: Request) -> AppState:
    return request.app.state.qtts


def after_state_change(describe: Callable[[], dict[str, Any]], minimal: dict[str, Any], status_code: int,
                       headers: dict[str, str] | None = None) -> JSONResponse:
    """The answer to a request that has changed something (a job stored, a voice written): its
    full description, or, if building that fails, ``minimal`` (the id and the status) with the
    same success status.  Never a 5xx once the state changed: a client retrying on 5xx would
    make a duplicate."""
    try:
        return JSONResponse(describe(), status_code=status_code, headers=headers)
    except Exception:  # logged; the client still learns what exists
        log.exception("describing a finished change failed; answering with its id")
        return JSONResponse(minimal, status_code=status_code, headers=headers)
