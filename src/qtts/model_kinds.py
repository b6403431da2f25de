"""Which request fits which kind of model: the one set of rules, used before a model loads
(on the request) and by the engine (on the voice it is given).

- Base models clone: a library voice or a reference clip; no speaker, no instruction.
- CustomVoice models speak as one of their preset speakers; the 1.7B one also takes a style
  instruction (upstream silently drops it at 0.6B: here it is an error).
- VoiceDesign models speak in a voice described in words (the instruction); nothing else.
"""

from __future__ import annotations

from qtts.errors import BadInput, WrongModelKind
from qtts.hub import BASE, CUSTOM_VOICE, VOICE_DESIGN, ResolvedModel

_BASE_HINT = "use a Base model: --model-id 1.7b (or 0.6b)"
_CUSTOM_HINT = "use a CustomVoice model: --model-id 1.7b-custom (or 0.6b-custom); 'qtts speakers' lists its speakers"
_DESIGN_HINT = "use --model-id 1.7b-design with --instruct, or 1.7b-custom with --speaker and --instruct"


def check_fits(model: ResolvedModel, *, cloned: bool, speaker: str | None, instruct: str | None) -> str | None:
    """Raise ``WrongModelKind`` (or ``BadInput``) unless a voice of this shape suits
    ``model``; return the speaker's name as the model knows it (lowercase), if any."""
    kind = model.tts_model_type
    name = model.model_id
    if kind == BASE:
        if speaker:
            raise WrongModelKind(f"{name} is a Base (voice-cloning) model; preset speakers need a CustomVoice model",
                                 hint=_CUSTOM_HINT)
        if instruct:
            raise WrongModelKind(f"{name} is a Base (voice-cloning) model; it takes no instructions", hint=_DESIGN_HINT)
        return None
    if cloned:
        raise WrongModelKind(f"{name} is a {model.kind} model; cloning a voice (a library voice or a reference clip) "
                             "needs a Base model",
                             hint=_BASE_HINT + (" — or pick a preset speaker with --speaker" if kind == CUSTOM_VOICE
                                                else " — or describe the voice with --instruct"))
    if kind == CUSTOM_VOICE:
        if not speaker:
            raise BadInput(f"{name} speaks with a preset speaker; none was given",
                           hint=f"pass --speaker, one of: {', '.join(model.speakers)}")
        key = speaker.strip().lower()
        if key not in model.speakers:
            raise BadInput(f"{name} has no speaker {speaker!r}", hint=f"choose one of: {', '.join(model.speakers)}")
        if instruct and not model.takes_instructions:
            raise WrongModelKind(f"{name} does not take instructions (only the 1.7B CustomVoice model does)",
                                 hint="use --model-id 1.7b-custom, or drop the instruction")
        return key
    if kind == VOICE_DESIGN:
        if speaker:
            raise WrongModelKind(f"{name} is a VoiceDesign model; preset speakers need a CustomVoice model",
                                 hint=_CUSTOM_HINT)
        if not (instruct or "").strip():
            raise BadInput(f"{name} is a VoiceDesign model: it needs a description of the voice",
                           hint='pass --instruct "a calm, low-pitched older man, slightly hoarse" (any words)')
        return None
    raise WrongModelKind(f"{name} is a model of an unknown kind ({kind!r})", hint=_BASE_HINT)
