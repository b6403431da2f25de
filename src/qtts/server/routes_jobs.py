"""The job API: submit, inspect, fetch audio, cancel, list."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from qtts import audio as audio_mod
from qtts import subtitles
from qtts.errors import BadInput, JobNotDone, NotFound
from qtts.jobs.job import FAILED, STATUSES, SUCCEEDED, Job
from qtts.server.schemas import JobBody, job_request
from qtts.server.state import after_state_change, state_of
from qtts.synthesis import validate_request

router = APIRouter(prefix="/v1/jobs")


@router.post("", status_code=202)
async def submit(body: JobBody, request: Request) -> JSONResponse:
    state = state_of(request)
    model = state.engines.resolved(state.engines.pick(body.model))
    speak = validate_request(state.settings, state.library, job_request(body, state.settings, model), model)
    job = await run_in_threadpool(state.queue.submit, speak)  # the state changes here, after every check
    return after_state_change(job.to_public, {"id": job.id, "object": "job", "status": job.status}, 202,
                              {"Location": f"/v1/jobs/{job.id}"})


@router.get("")
async def list_jobs(request: Request, limit: int = Query(20, ge=1, le=200), offset: int = Query(0, ge=0, le=2**62),
                    status: str | None = None) -> dict:
    if status is not None and status not in STATUSES:
        raise BadInput(f"unknown status {status!r}", hint=f"use one of: {', '.join(STATUSES)}")
    jobs, total = await run_in_threadpool(state_of(request).queue.store.list, limit, offset, status)
    return {"object": "list", "data": [j.to_public() for j in jobs], "total": total, "limit": limit, "offset": offset}


@router.get("/{job_id}")
async def get_job(job_id: str, request: Request) -> dict:
    job = await run_in_threadpool(state_of(request).queue.store.get, job_id)
    return job.to_public()


@router.get("/{job_id}/audio")
async def get_audio(job_id: str, request: Request, format: str | None = None) -> Response:  # noqa: A002
    job = await run_in_threadpool(state_of(request).queue.store.get, job_id)
    _require_done(job_id, job)
    fmt = audio_mod.check_format(format or job.output_format)
    data = await run_in_threadpool(_artifact_bytes, Path(job.artifact), job.output_format, fmt)
    return Response(data, media_type=audio_mod.media_type(fmt),
                    headers={"Content-Disposition": f'attachment; filename="{job_id}.{fmt}"'})


@router.get("/{job_id}/subtitles")
async def get_subtitles(job_id: str, request: Request, format: str = "srt") -> Response:  # noqa: A002
    """The job's subtitles (SRT or WebVTT), timed from its chunks as synthesized."""
    job = await run_in_threadpool(state_of(request).queue.store.get, job_id)
    _require_done(job_id, job)
    text = subtitles.render(subtitles.cues(job.summary.get("chunks", [])), format)
    media = "text/vtt" if format == "vtt" else "application/x-subrip"
    return Response(text, media_type=f"{media}; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{job_id}.{format}"'})


def _require_done(job_id: str, job: Job) -> None:
    if job.status != SUCCEEDED:
        detail = f": {job.error_message}" if job.status == FAILED else ""
        hint = ("poll GET /v1/jobs/{id} until it succeeded" if job.status in ("queued", "running") else
                "it will not have audio: submit the request again (POST /v1/jobs)")
        raise JobNotDone(f"job {job_id} is {job.status}{detail}", hint=hint)


def _artifact_bytes(path: Path, stored: str, wanted: str) -> bytes:
    if not path.is_file():
        raise NotFound(f"the audio of this job is missing at {path}",
                       hint="the artifacts directory was cleaned; resubmit")
    data = path.read_bytes()
    if wanted == stored:
        return data
    if stored == "pcm":
        import numpy as np

        samples = np.frombuffer(data, "<i2").astype("float32") / 32767.0
        return audio_mod.encode(audio_mod.Audio(samples), wanted)
    return audio_mod.encode(audio_mod.decode_audio(data, what="stored job audio"), wanted)


@router.delete("/{job_id}")
async def cancel(job_id: str, request: Request) -> JSONResponse:
    job = await run_in_threadpool(state_of(request).queue.store.request_cancel, job_id)
    return after_state_change(job.to_public, {"id": job.id, "object": "job", "status": job.status}, 200)
