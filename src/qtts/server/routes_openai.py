"""OpenAI-compatible speech: ``POST /v1/audio/speech`` and ``GET /v1/models``."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from qtts import audio as audio_mod
from qtts import rendering
from qtts.engine.holder import GENERIC_MODEL_NAMES
from qtts.hub import SPEAKER_LANGUAGES
from qtts.parts import split_parts
from qtts.server.schemas import SpeechBody, speech_request
from qtts.server.state import state_of
from qtts.synthesis import prompts_for, validate_request

log = logging.getLogger(__name__)
router = APIRouter()

# Formats whose encoded chunks can be concatenated into one valid stream.
_STREAMABLE = ("pcm", "wav", "mp3")


@router.get("/v1/models")
def list_models(request: Request) -> dict:
    """The served models with their kind, speakers and whether they take instructions
    (OpenAI's names and ``qwen3-tts`` are the default model, the first listed)."""
    engines = state_of(request).engines
    data = []
    for model_id in engines.model_ids:
        model = engines.resolved(model_id)
        data.append({"id": model_id, "object": "model", "owned_by": "qtts", "kind": model.kind,
                     "takes_instructions": model.takes_instructions, "languages": list(model.languages),
                     "speakers": [{"id": s, "native_language": SPEAKER_LANGUAGES.get(s, "unknown")}
                                  for s in model.speakers],
                     "loaded": any(e.model.model_id == model_id for e in engines.loaded())})
    data += [{"id": name, "object": "model", "owned_by": "qtts", "alias_of": engines.default}
             for name in GENERIC_MODEL_NAMES]
    return {"object": "list", "data": data}


@router.post("/v1/audio/speech")
async def speech(body: SpeechBody, request: Request) -> Response:
    state = state_of(request)
    model_id = state.engines.pick(body.model)
    model = state.engines.resolved(model_id)
    speak, warnings = speech_request(body, state.settings, model)
    speak = validate_request(state.settings, state.library, speak, model)
    engine = await run_in_threadpool(state.engines.get, model_id)
    headers = {}
    if warnings:
        log.warning("; ".join(warnings))
        headers["X-Qtts-Warning"] = "; ".join(warnings)
    parts = split_parts(speak)
    prompt_for = await run_in_threadpool(prompts_for, engine, state.library, parts)
    cancelled = threading.Event()

    def chunks() -> Iterator[audio_mod.Audio]:
        try:
            # pcm and wav: frame groups as they are decoded (raw samples concatenate; mp3 frames
            # would not); at another speed, chunk by chunk
            frame_groups = speak.output_format in ("pcm", "wav")
            for samples, _chunk in rendering.pieces(engine, parts, prompt_for, speak.speed, frame_groups=frame_groups,
                                                    should_cancel=cancelled.is_set):
                if len(samples):
                    yield audio_mod.Audio(samples)
        finally:
            cancelled.set()  # finished, or the client went away: stop generating

    fmt = speak.output_format
    media = audio_mod.media_type(fmt)
    if body.stream_format == "sse":
        return StreamingResponse(iterate_in_threadpool(_sse(chunks(), fmt)), media_type="text/event-stream",
                                 headers=headers)
    if fmt in _STREAMABLE:
        return StreamingResponse(iterate_in_threadpool(_raw_stream(chunks(), fmt)), media_type=media, headers=headers)
    parts = await run_in_threadpool(lambda: [a.samples for a in chunks()])
    whole = audio_mod.Audio(audio_mod.join(parts, 0))
    return Response(audio_mod.encode(whole, fmt), media_type=media, headers=headers)


def _raw_stream(chunks: Iterator[audio_mod.Audio], fmt: str) -> Iterator[bytes]:
    if fmt == "wav":
        yield audio_mod.wav_stream_header(audio_mod.SAMPLE_RATE)
        for chunk in chunks:
            yield audio_mod.encode(chunk, "pcm")
        return
    for chunk in chunks:
        yield audio_mod.encode(chunk, fmt)


def _sse(chunks: Iterator[audio_mod.Audio], fmt: str) -> Iterator[str]:
    total = 0.0
    for chunk in chunks:
        total += chunk.duration_s
        data = base64.b64encode(audio_mod.encode(chunk, fmt)).decode("ascii")
        yield f"data: {json.dumps({'type': 'speech.audio.delta', 'audio': data})}\n\n"
    done = {"type": "speech.audio.done", "usage": {"audio_seconds": round(total, 3)}}
    yield f"data: {json.dumps(done)}\n\n"
