"""Designed voices that stay the same: design once with a VoiceDesign model, keep as a clone.

A VoiceDesign model invents the voice anew from its description on every call, so the
same words give a different person each time.  ``design_voice`` speaks a sample sentence
in the described voice once and stores that clip with its transcript in the voice library,
where every later ``speak --voice-id`` on a Base model clones it: the workflow Qwen's
documentation shows (design, then clone), as one step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qtts import audio as audio_mod
from qtts.errors import BadInput
from qtts.settings import Settings
from qtts.voices import VoiceInfo, VoiceLibrary, validate_voice_id

DESIGN_MODEL = "1.7b-design"  # the one published VoiceDesign model
# Long enough for a good reference (about 5-8 s of speech), short enough to generate quickly.
MAX_SAMPLE_CHARS = 300
SAMPLE_TEXT = "Hello! This is the voice I will use from now on. I hope you like how it sounds."


@dataclass(frozen=True)
class DesignRequest:
    voice_id: str
    description: str
    sample_text: str | None = None
    language: str = Settings.language
    seed: int | None = None
    model_id: str = DESIGN_MODEL
    overwrite: bool = False
    max_frames: int | None = None  # per chunk; None = derived from the sample's length


def design_voice(settings: Settings, request: DesignRequest, say: Callable[[str], None] | None = None) -> VoiceInfo:
    """Speak the sample in the described voice and store it in the library as a clone."""
    from qtts.engine.core import Engine, SynthesisOptions
    from qtts.engine.prompts import DesignedVoice
    from qtts.hub import resolve_model
    from qtts.model_kinds import check_fits
    from qtts.text import normalize_text

    step = say or (lambda _message: None)
    library = VoiceLibrary(settings.voices_dir)
    validate_voice_id(request.voice_id)
    library.check_free(request.voice_id, request.overwrite)
    description = normalize_text(request.description or "")
    if not description:
        raise BadInput("--design needs words describing the voice", hint='e.g. --design "a warm, young female voice"')
    sample = normalize_text(request.sample_text or "")
    if not sample:
        if request.language.lower() not in ("auto", "english"):
            raise BadInput(f"the built-in sample sentence is English; the voice is for {request.language}",
                           hint="pass --sample-text with a sentence or two in that language")
        sample = SAMPLE_TEXT
    if len(sample) > MAX_SAMPLE_CHARS:
        raise BadInput(f"the sample text has {len(sample)} characters; a reference is best at 3-15 s of speech",
                       hint=f"use at most {MAX_SAMPLE_CHARS} characters (a sentence or two)")
    model = resolve_model(request.model_id)
    check_fits(model, cloned=False, speaker=None, instruct=description)
    step(f"loading {model.model_id} ...")
    engine = Engine.load(settings, request.model_id)
    step("speaking the sample in the described voice ...")
    options = SynthesisOptions(language=request.language, seed=request.seed, max_frames=request.max_frames,
                               batch_size=1, split_max_chars=len(sample) + 1)
    result = engine.synthesize(sample, DesignedVoice(description), options)
    try:
        reference = audio_mod.prepare_reference(result.audio, settings.max_reference_s)
    except BadInput as exc:
        raise BadInput(f"the designed sample is not usable as a reference: {exc.message}",
                       hint="try another --seed, or a --sample-text of one or two full sentences") from exc
    return library.add_designed(request.voice_id, reference, sample, description, engine.model.model_id,
                                request.overwrite)
