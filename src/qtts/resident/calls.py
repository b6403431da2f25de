"""The CLI's side of the resident engine: the same calls as in-process, sent over the socket.

Each returns what the in-process function returns (a summary; audio written atomically
here, never a partial file), or None when no engine could be started, and the caller then
runs in its own process.  Errors come back with their category and are raised again as the
same class, with the same exit code and hint.  An engine that dies mid-call is a
``ServerUnavailable`` (exit 8) naming its log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtts.errors import QttsError, ServerUnavailable, from_category
from qtts.request import SpeakRequest, request_to_dict
from qtts.resident import launch, wire
from qtts.settings import Settings
from qtts.synthesis import deliver, model_of

if TYPE_CHECKING:
    from qtts.engine.core import ProgressCallback

Say = Callable[[str], None]


def speak_via_engine(
    settings: Settings,
    request: SpeakRequest,
    out_path: Path | None,
    say: Say,
    on_frames: "ProgressCallback | None" = None,
    write: Callable[[bytes], None] | None = None,
) -> dict[str, Any] | None:
    """``synthesis.speak_to_file`` (or, with ``write``, ``synthesis.stream_to``) through the
    engine.  The request names its model, so one engine serves calls for several."""
    started = time.perf_counter()
    running = launch.try_connect(settings, say)
    if running is None:
        return None
    request = replace(request, model_id=model_of(settings, request))
    body = {"request": request_to_dict(request), "stream": write is not None}
    audio: list[bytes] = []
    summary = _call(running, "/v1/engine/speak", body, on_audio=write or audio.append, say=say, on_frames=on_frames)
    summary["engine"] = {
        **summary.get("engine", {}),
        "pid": running.status.get("pid"),
        "started_now": running.started_now,
        "call_seconds": round(time.perf_counter() - started, 3),
    }
    if write is not None:
        return summary
    return deliver(b"".join(audio), summary, out_path)


def clone_via_engine(
    settings: Settings, voice_id: str, ref_audio: Path, ref_text: str | None, x_vector_only: bool, force: bool, say: Say
) -> dict[str, Any] | None:
    """Store a cloned voice through the engine (it derives the prompt with its loaded model)."""
    import httpx

    running = launch.try_connect(settings, say)
    if running is None:
        return None
    body = {
        "voice_id": voice_id,
        "ref_audio": str(Path(ref_audio).absolute()),
        "ref_text": ref_text,
        "x_vector_only": x_vector_only,
        "force": force,
        "model_id": settings.model_id,
    }
    try:
        with launch.http_client(running.place, None) as client:
            response = client.post("/v1/engine/clone", json=body)
    except httpx.TransportError as exc:
        raise _died(running) from exc
    if response.status_code != 200:
        raise _http_error(response.status_code, response.read())
    return response.json()


def _call(
    running: launch.Running,
    path: str,
    body: dict[str, Any],
    on_audio: Callable[[bytes], None],
    say: Say,
    on_frames: "ProgressCallback | None",
) -> dict[str, Any]:
    import httpx

    reader = wire.Reader()
    try:
        with launch.http_client(running.place, None) as client, client.stream("POST", path, json=body) as response:
            if response.status_code != 200:
                raise _http_error(response.status_code, response.read())
            for data in response.iter_raw():
                for kind, payload in reader.feed(data):
                    if kind == wire.AUDIO:
                        on_audio(payload)
                    elif kind == wire.PROGRESS:
                        say(payload.decode("utf-8", errors="replace"))
                    elif kind == wire.FRAMES:
                        if on_frames is not None:
                            on_frames(*json.loads(payload))
                    elif kind == wire.RESULT:
                        return json.loads(payload)
                    else:
                        error = json.loads(payload)
                        raise from_category(
                            error.get("category", ""), error.get("message", "engine error"), error.get("hint", "")
                        )
    except httpx.TransportError as exc:
        raise _died(running) from exc
    raise _died(running)  # the answer ended before its result


def _died(running: launch.Running) -> QttsError:
    return ServerUnavailable(
        f"the qtts engine (pid {running.status.get('pid')}) stopped during the call",
        hint=f"run the command again (a new engine starts), or add --no-engine; its log: {running.place.log}",
    )


def _http_error(status: int, content: bytes) -> QttsError:
    try:
        error = json.loads(content).get("error", {})
    except ValueError:
        error = {}
    return from_category(
        str(error.get("code", "")), error.get("message") or f"HTTP {status}", error.get("hint", ""), status
    )
