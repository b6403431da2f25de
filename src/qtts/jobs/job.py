"""A job: one synthesis request with its status, progress, error and artifact."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from qtts.synthesis import SpeakRequest, VoiceSource

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
FINAL = (SUCCEEDED, FAILED, CANCELLED)


def new_job_id() -> str:
    return "job_" + uuid.uuid4().hex[:20]


@dataclass(frozen=True)
class Job:
    id: str
    status: str
    request: dict[str, Any]
    created_at: float
    updated_at: float
    chunks_done: int = 0
    chunks_total: int = 0
    attempts: int = 0
    worker: str = ""
    lease_until: float = 0.0
    cancel_requested: bool = False
    error_category: str = ""
    error_message: str = ""
    error_hint: str = ""
    artifact: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def output_format(self) -> str:
        return str(self.request.get("output_format", "wav"))

    def to_public(self) -> dict[str, Any]:
        """What the API shows: no internal lease fields, no reference-audio bytes."""
        request = {k: v for k, v in self.request.items() if k != "voice"}
        voice = self.request.get("voice") or {}
        request["voice"] = (voice.get("voice_id") or voice.get("speaker")
                            or ("(uploaded reference)" if voice.get("ref_audio_b64") else None))
        out: dict[str, Any] = {
            "id": self.id,
            "object": "job",
            "status": self.status,
            "created_at": self.created_at,
            "started_at": self.started_at or None,
            "finished_at": self.finished_at or None,
            "progress": {"chunks_done": self.chunks_done, "chunks_total": self.chunks_total},
            "attempts": self.attempts,
            "request": request,
            "error": None,
            "result": None,
        }
        if self.error_message:
            out["error"] = {"category": self.error_category, "message": self.error_message, "hint": self.error_hint}
        if self.status == SUCCEEDED:
            out["result"] = {"format": self.output_format, "audio_url": f"/v1/jobs/{self.id}/audio", **self.summary}
        return out


def request_to_dict(request: SpeakRequest) -> dict[str, Any]:
    """JSON-safe form of a request; an uploaded reference clip travels as base64."""
    values = asdict(request)
    voice = request.voice
    values["voice"] = {"voice_id": voice.voice_id, "ref_text": voice.ref_text, "x_vector_only": voice.x_vector_only,
                       "speaker": voice.speaker}
    if isinstance(voice.ref_audio, (bytes, bytearray)):
        values["voice"]["ref_audio_b64"] = base64.b64encode(voice.ref_audio).decode("ascii")
    elif voice.ref_audio is not None:
        values["voice"]["ref_audio_path"] = str(voice.ref_audio)
    return values


def request_from_dict(values: dict[str, Any]) -> SpeakRequest:
    voice_values = dict(values.get("voice") or {})
    ref_audio: Path | bytes | None = None
    if voice_values.get("ref_audio_b64"):
        ref_audio = base64.b64decode(voice_values["ref_audio_b64"])
    elif voice_values.get("ref_audio_path"):
        ref_audio = Path(voice_values["ref_audio_path"])
    voice = VoiceSource(voice_id=voice_values.get("voice_id"), ref_audio=ref_audio,
                        ref_text=voice_values.get("ref_text"), x_vector_only=bool(voice_values.get("x_vector_only")),
                        speaker=voice_values.get("speaker"))
    known = {f.name for f in fields(SpeakRequest)} - {"voice"}
    return SpeakRequest(voice=voice, **{k: v for k, v in values.items() if k in known})


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
