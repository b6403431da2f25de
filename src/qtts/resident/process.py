"""The resident engine process (``qtts engine run``, started by ``launch``): qtts's HTTP app
with the engine routes, served on the private Unix socket, until it has been idle for
``engine_idle_s`` or is asked to stop.

The default model starts loading as the process starts (the app's lifespan), while the
socket already answers: the first call waits for the load instead of for a new process.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from contextlib import suppress

from qtts.resident.place import Place, build_id, ensure_private, fingerprint, place_for
from qtts.resident.state import EngineState
from qtts.settings import Settings

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.5


def run_engine(settings: Settings) -> None:
    """Serve until idle or stopped; the socket and ``engine.json`` are removed on the way out."""
    import psutil

    from qtts.engine.holder import Engines

    boot_s = max(0.0, time.time() - psutil.Process().create_time())
    place = place_for(settings)
    ensure_private(place)
    settings = settings.replace(embedded_worker=False)  # 'qtts serve' runs the job queue, not the engine
    engines = Engines(settings, open_models=True)
    engines.start_loading()  # importing torch and qwen_tts first: the web stack's imports run beside it
    state = EngineState(settings, place, boot_s)
    listener = _bind(place)

    import uvicorn

    from qtts.server.app import create_app

    app = create_app(settings, engines, resident=state)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5))
    _write_info(place, settings)
    watcher = threading.Thread(target=_watch, args=(state, server), name="engine-idle-watch", daemon=True)
    watcher.start()
    try:
        server.run(sockets=[listener])
    finally:
        _remove_own_files(place)


def _bind(place: Place) -> socket.socket:
    """Listen on the socket, created 0600 (never briefly open to others: the umask is set
    before the bind).  A leftover socket file is replaced: ``launch`` holds the start lock
    and found nobody answering on it."""
    with suppress(FileNotFoundError):
        place.socket.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        listener.bind(str(place.socket))
    finally:
        os.umask(old_umask)
    os.chmod(place.socket, 0o600)
    listener.listen(64)
    return listener


def _write_info(place: Place, settings: Settings) -> None:
    info = {"pid": os.getpid(), "build": build_id(), "settings": fingerprint(settings), "started": time.time()}
    tmp = place.info.with_suffix(".tmp")
    tmp.write_text(json.dumps(info), encoding="utf-8")
    os.replace(tmp, place.info)


def _remove_own_files(place: Place) -> None:
    """Only this engine's files: a newer engine may already have taken the place."""
    with suppress(OSError, ValueError):
        if json.loads(place.info.read_text(encoding="utf-8")).get("pid") == os.getpid():
            place.info.unlink()
            place.socket.unlink()


def _watch(state: EngineState, server: object) -> None:
    while not state.should_exit():
        time.sleep(WATCH_INTERVAL_S)
    if not state.stop_requested.is_set():
        log.warning("idle for %.0f s: the engine exits", state.settings.engine_idle_s)
    server.should_exit = True  # type: ignore[attr-defined]
