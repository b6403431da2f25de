"""Speaking a request end to end: validate, find the voice, synthesize, encode.

The one place where a request (text + voice + options) becomes audio; the CLI, the batch
runner, the queue worker and the HTTP app all call ``synthesize_request``.  Validation runs
before the model loads, so bad input fails in milliseconds, not after a 10 s load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtts import audio as audio_mod
from qtts import numbers, rendering
from qtts.errors import BadInput, TooLarge
from qtts.files import write_atomic
from qtts.hub import ResolvedModel, check_language, resolve_model
from qtts.model_kinds import check_fits
from qtts.parts import Part, speech_parts, split_parts
from qtts.request import MAX_INSTRUCT_CHARS, SpeakRequest, check_numbers
from qtts.settings import MAX_SEED, Settings
from qtts.text import is_speakable, normalize_text
from qtts.voices import VoiceLibrary, validate_voice_id

if TYPE_CHECKING:
    from qtts.engine.core import ChunkAudio, Engine, ProgressCallback
    from qtts.engine.prompts import Voice


def model_of(settings: Settings, request: SpeakRequest) -> str:
    """The model a request runs on: its own ``model_id``, else the settings' one."""
    return request.model_id or settings.model_id


def check_against_model(request: SpeakRequest, model: ResolvedModel) -> None:
    """Language and model kind (``model_kinds``), from the model's config: before it loads."""
    check_language(request.language, model.languages)
    voice = request.voice
    check_fits(model, cloned=voice.cloned, speaker=voice.speaker, instruct=request.instruct)


def validate_request(settings: Settings, library: VoiceLibrary, request: SpeakRequest,
                     model: ResolvedModel | None = None) -> SpeakRequest:
    """Check everything that does not need the model loaded (with ``model``, its language
    and kind too, before the voice library is looked at); return the request with clean text."""
    text = normalize_text(request.text or "")
    if not is_speakable(text):
        raise BadInput("the text has nothing to speak (it is empty, or only punctuation, symbols or emoji)",
                       hint="pass some words to speak")
    if request.seed is not None and not 0 <= request.seed <= MAX_SEED:
        raise BadInput(f"the seed {request.seed} is out of range", hint=f"use a whole number from 0 to {MAX_SEED}")
    if len(text) > settings.max_text_chars:
        raise TooLarge(f"the text has {len(text)} characters; the limit is {settings.max_text_chars}",
                       hint="split it into several requests, or raise QTTS_MAX_TEXT_CHARS")
    audio_mod.check_format(request.output_format)
    check_numbers(request)
    request = replace(request, text=text)
    speech = speech_parts(split_parts(request))  # a malformed tag is bad input here
    if not speech:
        raise BadInput("the text has nothing to speak between its pauses and tags",
                       hint="add some words, or pass --no-markup to read the tags as text")
    for part in speech:
        _check_voice(library, part, model)
    instruct = normalize_text(request.instruct) if request.instruct else None
    return replace(request, text=text, instruct=instruct or None)


def _check_voice(library: VoiceLibrary, request: SpeakRequest, model: ResolvedModel | None) -> None:
    """The voice of a request (or of one of its parts, after a markup switch)."""
    if model is not None:
        check_against_model(request, model)
    voice = request.voice
    if voice.voice_id and voice.ref_audio is not None:
        raise BadInput("give either a voice id or a reference clip, not both", hint="drop --ref-audio or --voice-id")
    if voice.speaker and voice.cloned:
        raise BadInput("give either a preset speaker or a cloned voice, not both",
                       hint="--speaker is for CustomVoice models; --voice-id and --ref-audio for Base models")
    if request.instruct is not None and len(request.instruct) > MAX_INSTRUCT_CHARS:
        raise TooLarge(f"the instruction has {len(request.instruct)} characters; the limit is {MAX_INSTRUCT_CHARS}",
                       hint="describe the voice or style in a sentence or two")
    if voice.voice_id:
        validate_voice_id(voice.voice_id)
        library.get(voice.voice_id)
    elif voice.ref_audio is not None:
        if not voice.x_vector_only and not (voice.ref_text or "").strip():
            raise BadInput("a reference clip needs its transcript in ICL mode",
                           hint="pass --ref-text, or --x-vector-only to clone from the clip alone")
    elif not voice.speaker and not (request.instruct or "").strip():
        raise BadInput("no voice given", hint="pass --voice-id (see 'qtts clone list') or --ref-audio with --ref-text; "
                       "--speaker on CustomVoice models; --instruct on VoiceDesign models")


def load_reference(settings: Settings, ref_audio: Path | bytes) -> audio_mod.Audio:
    # the pad added by prepare_reference is not counted against the limit
    decoded = audio_mod.decode_audio(ref_audio, what="reference audio", max_seconds=settings.max_reference_s)
    return audio_mod.prepare_reference(decoded, settings.max_reference_s)


def check_clone(settings: Settings, voice_id: str, ref_audio: Path, ref_text: str | None, x_vector_only: bool,
                overwrite: bool) -> tuple[VoiceLibrary, audio_mod.Audio]:
    """Everything a new voice needs checked before a model loads: its id (free, or
    ``overwrite``), its transcript, the clip itself; returns (library, prepared reference)."""
    library = VoiceLibrary(settings.voices_dir)
    validate_voice_id(voice_id)
    library.check_free(voice_id, overwrite)
    if not x_vector_only and not (ref_text or "").strip():
        raise BadInput("--ref-text is required in ICL mode",
                       hint="pass the words spoken in the clip, or add --x-vector-only")
    return library, load_reference(settings, ref_audio)


def voice_for(engine: "Engine", library: VoiceLibrary, request: SpeakRequest) -> "Voice":
    """What the engine speaks with: checked against its model's kind first, so that a
    request for another kind never reaches the voice library or the speaker encoder."""
    from qtts.engine.prompts import DesignedVoice, SpeakerVoice

    check_against_model(request, engine.model)
    voice = request.voice
    if voice.speaker:
        return SpeakerVoice(voice.speaker.strip().lower(), request.instruct)
    if not voice.cloned:
        return DesignedVoice(request.instruct or "")
    if voice.voice_id:
        return library.prompt_for(voice.voice_id, engine)
    assert voice.ref_audio is not None
    reference = load_reference(engine.settings, voice.ref_audio)
    return engine.create_prompt(reference, voice.ref_text, voice.x_vector_only)


Progress = Callable[[str], None]


def synthesize_request(
    engine: "Engine",
    library: VoiceLibrary,
    request: SpeakRequest,
    progress: Progress | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    on_frames: "ProgressCallback | None" = None,
) -> tuple[bytes, dict[str, Any]]:
    """Synthesize a validated request with a loaded engine; return (encoded audio, summary).
    The summary's chunks carry their place in the audio (``start``, ``end``: subtitles)."""
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    parts = split_parts(request)
    prompt_for = prompts_for(engine, library, parts)
    voiced = time.perf_counter()
    frame_times: list[float] = []
    _say_numbers(request, say)

    def frames(chunk: int, chunks: int, made: int, cap: int) -> None:
        frame_times.append(time.perf_counter())
        if on_frames is not None:
            on_frames(chunk, chunks, made, cap)

    # chunks counted over the whole text, whatever part (between pauses and switches) they are in
    total = sum(len(engine.split(part.text, part.options())) for part in speech_parts(parts))
    done = [0]

    def report(chunk: "ChunkAudio") -> None:
        done[0] += 1
        seconds = len(chunk.samples) / engine.sample_rate
        say(f"chunk {done[0]}/{total}: {seconds:.2f} s of audio in {chunk.elapsed_s:.2f} s"
            + (" (retried after runaway output)" if chunk.retried else ""))
        if on_chunk is not None:
            on_chunk(done[0], total)

    samples, placed = rendering.render(engine, parts, prompt_for, request.speed, on_chunk=report,
                                       on_progress=frames, should_cancel=should_cancel)
    audio = audio_mod.Audio(samples, engine.sample_rate)
    synthesized = time.perf_counter()
    data = audio_mod.encode(audio, request.output_format)
    elapsed = time.perf_counter() - started
    summary = {
        "model_id": engine.model.model_id,
        "format": request.output_format,
        "sample_rate": audio.sample_rate,
        "audio_seconds": round(audio.duration_s, 3),
        "elapsed_seconds": round(elapsed, 3),
        "rtf": round(elapsed / audio.duration_s, 3) if audio.duration_s else None,
        "load_seconds": round(engine.load_seconds, 3),
        "chunks": [_chunk_entry(p) for p in placed],
        "timings": _timings(started, voiced, frame_times, synthesized, elapsed),
    }
    return data, summary


def _chunk_entry(placed: "rendering.Placed") -> dict[str, Any]:
    chunk = placed.chunk
    entry = {"text": chunk.text, "start": round(placed.start_s, 3), "end": round(placed.end_s, 3),
             "frames": chunk.frames, "seconds": round(chunk.elapsed_s, 3), "retried": chunk.retried,
             "runaway": chunk.runaway}
    if chunk.spoken is not None:
        entry["spoken"] = chunk.spoken
    return entry


def prompts_for(engine: "Engine", library: VoiceLibrary, parts: list[Part]) -> Callable[[SpeakRequest], "Voice"]:
    """Each part's voice, made once per distinct voice and style (before synthesis starts, so
    that a bad voice fails first)."""
    made: dict[Any, Voice] = {}

    def key(request: SpeakRequest) -> Any:
        voice = request.voice
        return (voice.voice_id, id(voice.ref_audio), voice.ref_text, voice.x_vector_only, voice.speaker,
                request.instruct)

    for part in speech_parts(parts):
        if key(part) not in made:
            made[key(part)] = voice_for(engine, library, part)
    return lambda request: made[key(request)]


def _say_numbers(request: SpeakRequest, say: Progress) -> None:
    if request.read_numbers and not numbers.supported(request.language):
        say(f"--read-numbers: numbers are not rewritten for {request.language}; the text is read as it is")


def _timings(started: float, voiced: float, frame_times: list[float], synthesized: float,
             elapsed: float) -> dict[str, float]:
    """Where a call's seconds went: the voice's prompt, the prompt's prefill (to the first
    frame), the frames, decoding (with joining) after the last frame, encoding.  With several
    chunks the phases interleave; the split is then from the first and the last frame."""
    first = frame_times[0] if frame_times else synthesized
    last = frame_times[-1] if frame_times else synthesized
    return {"voice_s": round(voiced - started, 3), "prefill_s": round(first - voiced, 3),
            "frames_s": round(last - first, 3), "decode_s": round(synthesized - last, 3),
            "encode_s": round(started + elapsed - synthesized, 3)}


def prepare(settings: Settings, request: SpeakRequest) -> tuple[VoiceLibrary, str, SpeakRequest]:
    """Everything checked before a model loads (the request, its model's kind and language,
    the reference clip's header and length): (library, model id, clean request)."""
    library = VoiceLibrary(settings.voices_dir)
    model_id = model_of(settings, request)
    request = validate_request(settings, library, request, resolve_model(model_id))
    if request.voice.ref_audio is not None:
        load_reference(settings, request.voice.ref_audio)  # fail on a bad clip before the load
    return library, model_id, request


def speak_to_file(settings: Settings, request: SpeakRequest, out_path: Path | None,
                  progress: Progress | None = None, on_frames: "ProgressCallback | None" = None) -> dict[str, Any]:
    """Validate, load the model in this process, synthesize and write ``out_path`` atomically
    (or return the bytes under ``audio_bytes`` when ``out_path`` is None)."""
    from qtts.engine.core import Engine

    library, model_id, request = prepare(settings, request)
    say = progress or (lambda _message: None)
    say(f"loading {model_id} ({settings.precision}, {settings.attn_implementation}) ...")
    engine = Engine.load(settings, model_id)
    data, summary = synthesize_request(engine, library, request, progress=say, on_frames=on_frames)
    return deliver(data, summary, out_path)


def deliver(data: bytes, summary: dict[str, Any], out_path: Path | None) -> dict[str, Any]:
    """Write the audio atomically to ``out_path`` (never a partial file), or keep it in the
    summary under ``audio_bytes`` for stdout."""
    if out_path is not None:
        write_atomic(out_path, data)
        summary["output"] = str(out_path)
    else:
        summary["audio_bytes"] = data
    return summary


def stream_to(settings: Settings, request: SpeakRequest, write: Callable[[bytes], None],
              progress: Progress | None = None) -> dict[str, Any]:
    """Like ``speak_to_file`` for ``pcm``/``wav`` output, but hands audio to ``write`` frame
    group by frame group while generation goes on; returns a summary with the time to the
    first audio."""
    from qtts.engine.core import Engine

    check_streamable(request)
    library, model_id, request = prepare(settings, request)
    say = progress or (lambda _message: None)
    say(f"loading {model_id} ({settings.precision}) ...")
    engine = Engine.load(settings, model_id)
    return stream_request(engine, library, request, write)


def check_streamable(request: SpeakRequest) -> None:
    if request.output_format not in ("pcm", "wav"):
        raise BadInput(f"streaming writes raw audio; {request.output_format} cannot be streamed",
                       hint="use --format pcm or wav with --stream")


def stream_request(engine: "Engine", library: VoiceLibrary, request: SpeakRequest, write: Callable[[bytes], None],
                   should_cancel: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Synthesize a validated request with a loaded engine, handing ``pcm``/``wav`` bytes to
    ``write`` as frame groups are decoded (chunk by chunk at another speed); return the
    summary."""
    check_streamable(request)
    parts = split_parts(request)
    prompt_for = prompts_for(engine, library, parts)
    started = time.perf_counter()
    first_audio = None
    samples = 0
    if request.output_format == "wav":
        write(audio_mod.wav_stream_header(engine.sample_rate))
    for piece, _chunk in rendering.pieces(engine, parts, prompt_for, request.speed, frame_groups=True,
                                          should_cancel=should_cancel):
        if first_audio is None and len(piece):
            first_audio = time.perf_counter() - started
        samples += len(piece)
        write(audio_mod.encode(audio_mod.Audio(piece), "pcm"))
    elapsed = time.perf_counter() - started
    seconds = samples / engine.sample_rate
    return {"model_id": engine.model.model_id, "format": request.output_format, "sample_rate": engine.sample_rate,
            "audio_seconds": round(seconds, 3), "elapsed_seconds": round(elapsed, 3),
            "rtf": round(elapsed / seconds, 3) if seconds else None, "load_seconds": round(engine.load_seconds, 3),
            "time_to_first_audio_seconds": round(first_audio, 3) if first_audio is not None else None}
