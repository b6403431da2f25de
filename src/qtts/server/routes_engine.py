"""The resident engine's own routes (``qtts.resident``), served only on its private socket.

``POST /v1/engine/speak`` takes a whole ``SpeakRequest`` (the CLI's, as JSON) and answers
with frames (``resident.wire``): progress lines, the per-frame counter, the audio (at once,
or as it is decoded with ``stream``), then the summary or the error with its category, so
the CLI exits as it would in-process.  ``POST /v1/engine/clone`` stores a voice;
``GET /v1/engine`` is the status; ``POST /v1/engine/stop`` ends the process.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from qtts.errors import QttsError
from qtts.request import request_from_dict
from qtts.resident import wire
from qtts.resident.state import EngineState
from qtts.server.state import AppState, state_of
from qtts.synthesis import check_clone, prepare, stream_request, synthesize_request

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

FRAMES_MEDIA_TYPE = "application/x-qtts-frames"


def resident_of(request: Request) -> EngineState:
    return request.app.state.resident


@router.get("/v1/engine")
def status(request: Request) -> dict[str, Any]:
    return resident_of(request).status(state_of(request).engines)


@router.post("/v1/engine/stop")
def stop(request: Request) -> dict[str, Any]:
    resident = resident_of(request)
    resident.stop_requested.set()
    return {"stopping": True, "active": resident.active}


@router.post("/v1/engine/speak")
def speak(request: Request, body: dict[str, Any] = Body(...)) -> StreamingResponse:
    speak_request = request_from_dict(body.get("request") or {})
    work = _speak_work(state_of(request), resident_of(request), speak_request, bool(body.get("stream")))
    return StreamingResponse(iterate_in_threadpool(_frames(work)), media_type=FRAMES_MEDIA_TYPE)


@router.post("/v1/engine/clone")
def clone(request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    state, resident = state_of(request), resident_of(request)
    with resident.busy():
        library, reference = check_clone(
            state.settings,
            str(body.get("voice_id", "")),
            Path(str(body.get("ref_audio"))),
            body.get("ref_text"),
            bool(body.get("x_vector_only")),
            bool(body.get("force")),
        )
        engine = state.engines.wait(state.engines.pick(body.get("model_id")))
        voice = library.create(
            voice_id=str(body["voice_id"]),
            reference=reference,
            ref_text=body.get("ref_text"),
            x_vector_only=bool(body.get("x_vector_only")),
            engine=engine,
            overwrite=bool(body.get("force")),
        )
        return voice.to_dict()


Emit = Callable[[bytes], None]


def _speak_work(
    state: AppState, resident: EngineState, speak_request: Any, stream: bool
) -> Callable[[Emit, threading.Event], None]:
    def work(emit: Emit, cancelled: threading.Event) -> None:
        with resident.busy():

            def say(message: str) -> None:
                emit(wire.pack(wire.PROGRESS, message.encode()))

            def on_frames(chunk: int, chunks: int, frames: int, cap: int) -> None:
                emit(wire.pack_json(wire.FRAMES, [chunk, chunks, frames, cap]))

            library, model_id, clean = prepare(state.settings, speak_request)
            model_id = state.engines.pick(model_id)
            warm = any(e.model.model_id == model_id for e in state.engines.loaded())
            if not warm:
                say(f"the engine is loading {model_id} ...")
            engine = state.engines.wait(model_id)
            clean = replace(clean, model_id=model_id)
            if stream:
                summary = stream_request(
                    engine,
                    library,
                    clean,
                    lambda data: emit(wire.pack(wire.AUDIO, data)),
                    should_cancel=cancelled.is_set,
                )
            else:
                data, summary = synthesize_request(
                    engine, library, clean, progress=say, on_frames=on_frames, should_cancel=cancelled.is_set
                )
                emit(wire.pack(wire.AUDIO, data))
            summary["engine"] = {
                "served": True,
                "warm": warm,
                "startup_saved_s": resident.startup_s(engine.load_seconds) if warm else 0.0,
            }
            emit(wire.pack_json(wire.RESULT, summary))

    return work


def _frames(work: Callable[[Emit, threading.Event], None]) -> Iterator[bytes]:
    """Run ``work`` in its own thread and yield what it emits as it comes; a client that goes
    away (the iterator is closed) cancels the work at its next frame."""
    pending: queue.Queue[bytes | None] = queue.Queue()
    cancelled = threading.Event()

    def run() -> None:
        try:
            work(pending.put, cancelled)
        except QttsError as exc:
            pending.put(wire.pack_json(wire.ERROR, exc.to_dict()))
        except Exception as exc:  # the CLI shows it as an error, the log keeps the traceback
            log.exception("engine call failed")
            pending.put(
                wire.pack_json(
                    wire.ERROR,
                    {
                        "category": "error",
                        "message": f"internal error: {type(exc).__name__}: {exc}",
                        "hint": "see the engine's log",
                    },
                )
            )
        finally:
            pending.put(None)

    thread = threading.Thread(target=run, name="engine-call", daemon=True)
    thread.start()
    try:
        while (frame := pending.get()) is not None:
            yield frame
    finally:
        cancelled.set()
