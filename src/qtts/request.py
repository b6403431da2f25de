"""The one request object, from the boundary to the engine: who speaks (``VoiceSource``),
what and how (``SpeakRequest``), built from flags or fields over the settings, checked for
numbers in range, and carried as JSON (jobs, the resident engine)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtts.errors import BadInput
from qtts.hub import CUSTOM_VOICE, ResolvedModel
from qtts.settings import Settings

if TYPE_CHECKING:
    from qtts.engine.core import SynthesisOptions

MAX_INSTRUCT_CHARS = 1000  # a style or a voice description is a sentence or two
SPEED_RANGE = (0.5, 2.0)  # --speed and jobs' speed
OPENAI_SPEED_RANGE = (0.25, 4.0)  # the OpenAI-compatible endpoint keeps OpenAI's range


@dataclass(frozen=True)
class VoiceSource:
    """Who speaks: a library voice or an ad-hoc reference clip (path or bytes) with its
    transcript (Base models), or a preset ``speaker`` (CustomVoice models).  A VoiceDesign
    model's voice is the request's ``instruct``, so its source is empty."""

    voice_id: str | None = None
    ref_audio: Path | bytes | None = None
    ref_text: str | None = None
    x_vector_only: bool = False
    speaker: str | None = None

    @property
    def cloned(self) -> bool:
        return bool(self.voice_id) or self.ref_audio is not None


@dataclass(frozen=True)
class SpeakRequest:
    text: str
    voice: VoiceSource
    language: str = Settings.language  # every default is written once, in settings.Settings
    output_format: str = "wav"
    split_max_chars: int = Settings.split_max_chars
    timeout_s: float = 0.0
    seed: int | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    greedy: bool = False
    max_frames: int | None = None
    sentence_chunks: bool = False  # one sentence per chunk, for streaming
    batch_size: int = Settings.batch_size  # chunks generated together
    instruct: str | None = None  # CustomVoice 1.7B: a speaking style; VoiceDesign: the voice described
    model_id: str | None = None  # None: the settings' model (a server may serve several)
    markup: bool = True  # [pause:500ms], <break time=.../>, [speaker: x], [style: x], [voice: x] (qtts.markup)
    speed: float = 1.0  # speaking rate, pitch unchanged (qtts.stretch)
    read_numbers: bool = False  # numbers as words in the chunk's language (qtts.numbers)

    def options(self) -> "SynthesisOptions":
        from qtts.engine.core import SynthesisOptions

        return SynthesisOptions(
            language=self.language, seed=self.seed, timeout_s=self.timeout_s,
            split_max_chars=self.split_max_chars, max_frames=self.max_frames,
            pack_sentences=not self.sentence_chunks, batch_size=self.batch_size,
            do_sample=False if self.greedy else None, temperature=self.temperature, top_k=self.top_k,
            top_p=self.top_p, repetition_penalty=self.repetition_penalty, read_numbers=self.read_numbers,
        )


def build_request(settings: Settings, text: str, voice: VoiceSource, **given: Any) -> SpeakRequest:
    """The one place a request is made: what the caller gave (a flag, an HTTP field, a batch
    line; None means not given) over the settings (environment, config file, defaults)."""
    from_settings = {"language": settings.language, "split_max_chars": settings.split_max_chars,
                     "timeout_s": settings.timeout_s, "batch_size": settings.batch_size}
    return SpeakRequest(text=text, voice=voice, **{**from_settings, **{k: v for k,
                                                                       v in given.items() if v is not None}})


def voice_source(voice: str | None, model: ResolvedModel) -> VoiceSource:
    """A voice named by one string (an HTTP ``voice`` field, a batch line's ``voice``) as the
    model reads it: a preset speaker on CustomVoice models, a library voice otherwise (which a
    VoiceDesign model then refuses: its voice is the instruction)."""
    if model.tts_model_type == CUSTOM_VOICE:
        return VoiceSource(speaker=voice)
    return VoiceSource(voice_id=voice)


# Sampling settings a request may carry: (low, high, low_open); finite always.
SAMPLING_LIMITS = {"temperature": (0.0, 100.0, True), "top_p": (0.0, 1.0, True), "top_k": (1, 100_000, False),
                   "repetition_penalty": (1.0, 100.0, False), "max_frames": (2, 8192, False),
                   "speed": (OPENAI_SPEED_RANGE[0], OPENAI_SPEED_RANGE[1], False)}


def check_numbers(request: SpeakRequest) -> None:
    """Every number of a request finite and in range, whichever adapter made it (a flag, an
    HTTP field, a batch line): bad input here, never a torch traceback later."""
    from qtts.settings import check_number

    check_number("timeout_s", request.timeout_s, "timeout")
    check_number("split_max_chars", request.split_max_chars, "split_max_chars")
    check_number("batch_size", request.batch_size, "batch_size")
    for name, (low, high, low_open) in SAMPLING_LIMITS.items():
        value = getattr(request, name)
        if value is None:
            continue
        inside = math.isfinite(value) and (value > low if low_open else value >= low) and value <= high
        if not inside:
            bound = f"more than {low:g} and at most {high:g}" if low_open else f"{low:g}-{high:g}"
            raise BadInput(f"{name} {value} is out of range: it must be {bound}",
                           hint=f"pass a {name.replace('_', ' ')} of {bound}")


def request_to_dict(request: SpeakRequest) -> dict[str, Any]:
    """JSON-safe form of a request (a job's record, the resident engine's call): a reference
    clip in memory travels as base64, one on disk by its absolute path."""
    import base64

    values = asdict(request)
    voice = request.voice
    values["voice"] = {"voice_id": voice.voice_id, "ref_text": voice.ref_text, "x_vector_only": voice.x_vector_only,
                       "speaker": voice.speaker}
    if isinstance(voice.ref_audio, (bytes, bytearray)):
        values["voice"]["ref_audio_b64"] = base64.b64encode(voice.ref_audio).decode("ascii")
    elif voice.ref_audio is not None:
        values["voice"]["ref_audio_path"] = str(Path(voice.ref_audio).absolute())
    return values


def request_from_dict(values: dict[str, Any]) -> SpeakRequest:
    """The inverse of ``request_to_dict``; a body of the wrong shape is bad input."""
    import base64
    from dataclasses import fields

    try:
        voice_values = dict(values.get("voice") or {})
        ref_audio: Path | bytes | None = None
        if voice_values.get("ref_audio_b64"):
            ref_audio = base64.b64decode(voice_values["ref_audio_b64"])
        elif voice_values.get("ref_audio_path"):
            ref_audio = Path(voice_values["ref_audio_path"])
        voice = VoiceSource(voice_id=voice_values.get("voice_id"), ref_audio=ref_audio,
                            ref_text=voice_values.get("ref_text"),
                            x_vector_only=bool(voice_values.get("x_vector_only")), speaker=voice_values.get("speaker"))
        known = {f.name for f in fields(SpeakRequest)} - {"voice"}
        return SpeakRequest(voice=voice, **{k: v for k, v in values.items() if k in known})
    except (AttributeError, TypeError, ValueError) as exc:
        raise BadInput(f"malformed request: {exc}", hint="the client and the server differ in version?") from exc
