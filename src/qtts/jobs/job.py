"""A job: one synthesis request with its status, progress, error and artifact."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

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


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
