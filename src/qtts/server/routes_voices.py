"""The voice library over HTTP: ``/v1/audio/voices``."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from qtts.errors import BadInput, TooLarge, WrongModelKind
from qtts.hub import BASE, SPEAKER_LANGUAGES
from qtts.server.state import after_state_change, state_of
from qtts.synthesis import load_reference
from qtts.voice_archive import MAX_ARCHIVE_BYTES, SUFFIX, export_voice, import_voice
from qtts.voices import validate_voice_id

router = APIRouter(prefix="/v1/audio/voices")


@router.get("")
def list_voices(request: Request) -> dict:
    """Library voices (``kind`` cloned, or designed: both spoken by Base models) and the
    preset speakers of the served CustomVoice models (``kind`` preset, with the model)."""
    state = state_of(request)
    data = [{"id": v.voice_id, "object": "voice", "kind": "designed" if v.description else "cloned", **v.to_dict()}
            for v in state.library.list()]
    for model_id in state.engines.model_ids:
        for speaker in state.engines.resolved(model_id).speakers:
            data.append({"id": speaker, "object": "voice", "kind": "preset", "model": model_id,
                         "native_language": SPEAKER_LANGUAGES.get(speaker, "unknown")})
    return {"object": "list", "data": data}


@router.get("/{voice_id}")
def get_voice(voice_id: str, request: Request) -> dict:
    voice = state_of(request).library.get(voice_id)
    return {"id": voice.voice_id, "object": "voice", **voice.to_dict()}


@router.post("", status_code=201)
async def create_voice(request: Request, file: UploadFile, voice_id: str = Form(...), ref_text: str = Form(""),
                       x_vector_only: bool = Form(False), force: bool = Form(False)) -> JSONResponse:
    state = state_of(request)
    limit = state.settings.max_upload_bytes
    validate_voice_id(voice_id)
    if state.library.exists(voice_id) and not force:
        raise BadInput(f"voice {voice_id!r} already exists", hint="choose another id, or send force=true")
    if not x_vector_only and not ref_text.strip():
        raise BadInput("ref_text is required in ICL mode", hint="send the transcript, or x_vector_only=true")
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"the upload is over {limit // (1024 * 1024)} MiB", hint="send a shorter clip (3-15 s is best)")
    reference = await run_in_threadpool(load_reference, state.settings, data)
    base = state.engines.first_of_kind(BASE)
    if base is None:
        raise WrongModelKind("cloning a voice needs a Base model, and this server serves none",
                             hint="start 'qtts serve' with --model-id 1.7b (or 0.6b) among its models")
    engine = await run_in_threadpool(state.engines.get, base)
    voice = await run_in_threadpool(state.library.create, voice_id, reference, ref_text, x_vector_only, engine, force)
    return after_state_change(lambda: {"id": voice.voice_id, "object": "voice", **voice.to_dict()},
                              {"id": voice.voice_id, "object": "voice"}, 201)


@router.get("/{voice_id}/export")
def export(voice_id: str, request: Request) -> Response:
    """The voice as one file (``qtts clone import`` or ``POST /v1/audio/voices/import``)."""
    data = export_voice(state_of(request).library, voice_id)
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{voice_id}{SUFFIX}"'})


@router.post("/import", status_code=201)
async def import_(request: Request, file: UploadFile, voice_id: str | None = Form(None),
                  force: bool = Form(False)) -> JSONResponse:
    state = state_of(request)
    limit = min(state.settings.max_upload_bytes, MAX_ARCHIVE_BYTES)
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"the upload is over {limit // (1024 * 1024)} MiB", hint="send a file from a voice export")
    voice = await run_in_threadpool(import_voice, state.library, data, voice_id or None, force,
                                    state.settings.max_reference_s)
    return after_state_change(lambda: {"id": voice.voice_id, "object": "voice", **voice.to_dict()},
                              {"id": voice.voice_id, "object": "voice"}, 201)


@router.delete("/{voice_id}")
def delete_voice(voice_id: str, request: Request) -> dict:
    state_of(request).library.delete(voice_id)
    return {"id": voice_id, "object": "voice", "deleted": True}
