"""What the benchmark speaks: its sentences, its reference clip, and the voice of each model
kind (shared by the measurements and the fidelity check)."""

from __future__ import annotations

from typing import Any

import numpy as np

TEXT = ("The quick brown fox jumps over the lazy dog, and then it runs back home across the field "
        "while the sun goes down behind the hills.")
REF_TEXT = "This is a short reference recording for the benchmark."
OTHER_TEXT = "Another sentence in the same voice, spoken just before."  # first audio with a known voice
# The voice of each model kind: Base clones the 4 s reference; CustomVoice speaks as a preset
# speaker, with a style where the model takes one; VoiceDesign speaks a described voice.
SPEAKER = "ryan"
STYLE = "Speak calmly and clearly."
DESCRIPTION = "A calm, clear adult voice at a moderate pace."


def bench_voice(model: Any, clone: Any) -> Any:
    """The engine voice for a model's kind (``model``: a ``ResolvedModel``); ``clone()``
    makes the Base model's cloned prompt."""
    from qtts.engine.prompts import DesignedVoice, SpeakerVoice
    from qtts.hub import BASE, CUSTOM_VOICE

    if model.tts_model_type == BASE:
        return clone()
    if model.tts_model_type == CUSTOM_VOICE:
        return SpeakerVoice(SPEAKER, STYLE if model.takes_instructions else None)
    return DesignedVoice(DESCRIPTION)


def reference_audio() -> tuple[np.ndarray, int]:
    from qtts.doctor import smoke_reference

    return smoke_reference(4.0).samples, 24000
