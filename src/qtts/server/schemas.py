"""Request bodies of the HTTP API, and their translation to ``SpeakRequest``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from qtts.errors import TooLarge
from qtts.hub import BASE, CUSTOM_VOICE, ResolvedModel
from qtts.request import OPENAI_SPEED_RANGE, SPEED_RANGE, SpeakRequest, VoiceSource, build_request, voice_source
from qtts.settings import MAX_SEED

OPENAI_INPUT_LIMIT = 4096
RESPONSE_FORMATS = ("mp3", "opus", "flac", "wav", "pcm")


class VoiceRef(BaseModel):
    id: str


class SpeechBody(BaseModel):
    """POST /v1/audio/speech, as OpenAI's, plus qtts extensions (language, seed, max_frames)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)  # NaN and Infinity are refused (400)

    model: str
    input: str
    voice: str | VoiceRef
    response_format: str = "mp3"
    speed: float = Field(default=1.0, ge=OPENAI_SPEED_RANGE[0], le=OPENAI_SPEED_RANGE[1])
    instructions: str | None = None
    stream_format: Literal["audio", "sse"] = "audio"
    language: str | None = None  # None: the server's setting
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    max_frames: int | None = Field(default=None, ge=2, le=8192)  # per chunk (12.5 frames = 1 s)
    markup: bool = True  # False: [pause:...] and the other tags are read as text
    read_numbers: bool = False

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
    """POST /v1/jobs: one synthesis request to run in the queue.  ``voice`` is a library voice
    (Base models) or a preset speaker (CustomVoice); a VoiceDesign model takes none, its
    voice is the ``instructions``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    input: str
    voice: str | VoiceRef | None = None
    model: str | None = None  # None: the server's default model
    instructions: str | None = None
    response_format: str = "wav"
    language: str | None = None  # None: the server's setting
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    split_max_chars: int | None = Field(default=None, ge=20, le=2000)
    max_frames: int | None = Field(default=None, ge=2, le=8192)
    timeout_s: float | None = Field(default=None, ge=0, le=7 * 86400)
    speed: float = Field(default=1.0, ge=SPEED_RANGE[0], le=SPEED_RANGE[1])
    markup: bool = True
    read_numbers: bool = False

    @field_validator("response_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in RESPONSE_FORMATS + ("ogg",):
            raise ValueError(f"unsupported response_format {value!r}")
        return value

    @property
    def voice_id(self) -> str | None:
        return self.voice.id if isinstance(self.voice, VoiceRef) else self.voice


def speech_request(body: SpeechBody, settings: Any, model: ResolvedModel) -> tuple[SpeakRequest, list[str]]:
    """The request, and the warnings for the response header: OpenAI clients send
    ``instructions`` and a ``voice`` whatever the model, so where the model has no use for
    them they are dropped with a warning instead of refused."""
    if len(body.input) > OPENAI_INPUT_LIMIT:
        raise TooLarge(f"input has {len(body.input)} characters; the limit is {OPENAI_INPUT_LIMIT}",
                       hint="split the text, or submit it as a job (POST /v1/jobs)")
    warnings = []
    instruct = body.instructions
    if instruct and not model.takes_instructions:
        instruct = None
        warnings.append(instructions_warning(model))
    voice = voice_source(body.voice_id, model)
    if model.tts_model_type not in (BASE, CUSTOM_VOICE):  # VoiceDesign: the instructions are the voice
        if body.voice_id:
            warnings.append(f"voice is ignored: {model.kind} models take the voice from the instructions")
        voice = VoiceSource()
    request = build_request(settings, body.input, voice, language=body.language, output_format=body.response_format,
                            seed=body.seed, sentence_chunks=True, instruct=instruct, model_id=model.model_id,
                            max_frames=body.max_frames, speed=body.speed, markup=body.markup,
                            read_numbers=body.read_numbers)
    return request, warnings


def instructions_warning(model: ResolvedModel) -> str:
    if model.tts_model_type == BASE:
        return "instructions are ignored: Qwen3-TTS Base (voice-cloning) models do not take style instructions"
    return f"instructions are ignored: {model.model_id} does not take them (only the 1.7B CustomVoice model does)"


def job_request(body: JobBody, settings: Any, model: ResolvedModel) -> SpeakRequest:
    return build_request(settings, body.input, voice_source(body.voice_id, model), language=body.language,
                         output_format=body.response_format, split_max_chars=body.split_max_chars,
                         timeout_s=body.timeout_s, seed=body.seed, max_frames=body.max_frames,
                         instruct=body.instructions, model_id=model.model_id, speed=body.speed, markup=body.markup,
                         read_numbers=body.read_numbers)
