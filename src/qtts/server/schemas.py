"""Request bodies of the HTTP API, and their translation to ``SpeakRequest``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from qtts.errors import BadInput, TooLarge
from qtts.settings import MAX_SEED
from qtts.synthesis import SpeakRequest, VoiceSource, build_request

OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
OPENAI_INPUT_LIMIT = 4096
RESPONSE_FORMATS = ("mp3", "opus", "flac", "wav", "pcm")


class VoiceRef(BaseModel):
    id: str


class SpeechBody(BaseModel):
    """POST /v1/audio/speech, as OpenAI's, plus qtts extensions (language, seed)."""

    model_config = ConfigDict(extra="ignore")

    model: str
    input: str
    voice: str | VoiceRef
    response_format: str = "mp3"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    instructions: str | None = None
    stream_format: Literal["audio", "sse"] = "audio"
    language: str | None = None  # None: the server's setting
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)

    @field_validator("response_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in RESPONSE_FORMATS:
            raise ValueError(f"unsupported response_format {value!r}; supported: {', '.join(RESPONSE_FORMATS)}")
        return value

    @property
    def voice_id(self) -> str:
        return self.voice.id if isinstance(self.voice, VoiceRef) else self.voice


class JobBody(BaseModel):
    """POST /v1/jobs: one synthesis request to run in the queue."""

    model_config = ConfigDict(extra="forbid")

    input: str
    voice: str | VoiceRef
    response_format: str = "wav"
    language: str | None = None  # None: the server's setting
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    split_max_chars: int | None = Field(default=None, ge=20, le=2000)
    max_frames: int | None = Field(default=None, ge=2, le=8192)
    timeout_s: float | None = Field(default=None, ge=0)

    @field_validator("response_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in RESPONSE_FORMATS + ("ogg",):
            raise ValueError(f"unsupported response_format {value!r}")
        return value

    @property
    def voice_id(self) -> str:
        return self.voice.id if isinstance(self.voice, VoiceRef) else self.voice


def check_model(model: str, loaded_model_id: str) -> None:
    accepted = {*OPENAI_MODELS, "qwen3-tts", loaded_model_id, "1.7b", "0.6b"}
    if model not in accepted:
        raise BadInput(f"unknown model {model!r}", hint=f"use one of: {', '.join(sorted(accepted))}")


def speech_request(body: SpeechBody, settings: Any) -> SpeakRequest:
    if len(body.input) > OPENAI_INPUT_LIMIT:
        raise TooLarge(f"input has {len(body.input)} characters; the limit is {OPENAI_INPUT_LIMIT}",
                       hint="split the text, or submit it as a job (POST /v1/jobs)")
    return build_request(settings, body.input, VoiceSource(voice_id=body.voice_id), language=body.language,
                         output_format=body.response_format, seed=body.seed, sentence_chunks=True)


def job_request(body: JobBody, settings: Any) -> SpeakRequest:
    return build_request(settings, body.input, VoiceSource(voice_id=body.voice_id), language=body.language,
                         output_format=body.response_format, split_max_chars=body.split_max_chars,
                         timeout_s=body.timeout_s, seed=body.seed, max_frames=body.max_frames)
