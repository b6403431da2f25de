"""Calls into upstream's model: its inputs built its way, its ``generate``, and a decode of the
new frames only.

``generation_inputs`` uses qwen_tts's private tokenization helpers for each model kind;
``talker_inputs`` runs upstream's prompt building and stops where it hands over to the
talker (what the continuous batcher starts a stream from).

``Qwen3TTSModel.generate_voice_clone`` tokenizes, runs the talker (``model.generate``),
then decodes the reference codes *and* the new codes together and cuts the reference
audio off again: in ICL mode every call re-decodes the 3-15 s reference.  ``generate``
below calls the same tokenization and ``model.generate``; ``decode`` decodes only the new
frames, carrying the decoder's state from the reference (``codec.stream``: the same
waveform, without the reference's cost).  Several texts go through ``model.generate`` as
one batch: the weights are read once per frame for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from qtts.engine.prompts import DesignedVoice, SpeakerVoice, Voice, VoicePrompt
from qtts.errors import DependencyProblem

SAMPLES_PER_FRAME = 1920


def prompt_item(prompt: VoicePrompt) -> Any:
    from qwen_tts import VoiceClonePromptItem

    return VoiceClonePromptItem(ref_code=prompt.ref_code, ref_spk_embedding=prompt.speaker_embedding,
                                x_vector_only_mode=prompt.x_vector_only, icl_mode=not prompt.x_vector_only,
                                ref_text=prompt.ref_text)


def generate(tts: Any, texts: list[str], language: str, voice: Voice, **generate_kwargs: Any) -> list[Any]:
    """Talker + code predictor for a batch of texts in one voice; returns one (frames, 16)
    code tensor per text, cut at its end-of-speech token.  The model's inputs are built as
    upstream's ``generate_voice_clone`` / ``generate_custom_voice`` / ``generate_voice_design``
    build them, with their defaults (``generation_inputs``)."""
    if isinstance(voice, VoicePrompt):
        inputs = generation_inputs(tts, texts, generate_kwargs, prompt_items=[prompt_item(voice)] * len(texts),
                                   ref_text=voice.ref_text)
    elif isinstance(voice, SpeakerVoice):
        inputs = generation_inputs(tts, texts, generate_kwargs, speaker=voice.speaker, instruct=voice.instruct)
    elif isinstance(voice, DesignedVoice):
        inputs = generation_inputs(tts, texts, generate_kwargs, instruct=voice.instruct)
    else:
        raise TypeError(f"not a voice: {type(voice).__name__}")
    codes, _ = tts.model.generate(languages=[language] * len(texts), **inputs)
    return list(codes)


def talker_request(tts: Any, text: str, language: str, voice: Voice, **generate_kwargs: Any) -> dict[str, Any]:
    """What upstream's generation hands the talker for one text (``upstream.calls.talker_inputs``):
    the prompt embeddings, trailing text and generation settings of one stream of the
    continuous batcher."""
    return talker_inputs(tts.model, lambda: generate(tts, [text], language, voice, **generate_kwargs))


def decode(tts: Any, codes: list[Any], voice: Voice) -> list[np.ndarray]:
    """Waveforms of the new frames only (24 kHz float32), one per code tensor: as upstream's
    decode of the reference and the new frames together would give them, without decoding
    the reference again (``codec.stream``)."""
    from qtts.engine.codec.stream import StreamDecoder

    ref_code = voice.ref_code if isinstance(voice, VoicePrompt) else None
    return [StreamDecoder(tts.model.speech_tokenizer, ref_code).decode(frames) for frames in codes]


def generation_inputs(tts: Any, texts: list[str], generate_kwargs: dict[str, Any], *,
                      prompt_items: list[Any] | None = None, ref_text: str | None = None,
                      speaker: str | None = None, instruct: str | None = None) -> dict[str, Any]:
    """The arguments ``Qwen3TTSModel.generate_voice_clone`` (``prompt_items``),
    ``generate_custom_voice`` (``speaker``) or ``generate_voice_design`` pass to the model's
    ``generate``, built with their own private helpers and each one's default
    ``non_streaming_mode`` (False for cloning, True for the other two)."""
    inputs = {"input_ids": tts._tokenize_texts([tts._build_assistant_text(t) for t in texts]),
              **tts._merge_generate_kwargs(**generate_kwargs)}
    if prompt_items is not None:
        ref_ids = None
        if ref_text:
            ref_ids = [tts._tokenize_texts([tts._build_ref_text(ref_text)])[0]] * len(texts)
        return {**inputs, "ref_ids": ref_ids,
                "voice_clone_prompt": tts._prompt_items_to_voice_clone_prompt(prompt_items),
                "non_streaming_mode": False}
    instruct_id = tts._tokenize_texts([tts._build_instruct_text(instruct)])[0] if instruct else None
    inputs.update(instruct_ids=[instruct_id] * len(texts), non_streaming_mode=True)
    if speaker is not None:
        inputs["speakers"] = [speaker] * len(texts)
    return inputs


class _Captured(Exception):
    pass


def talker_inputs(model: Any, generate: Callable[[], Any]) -> dict[str, Any]:
    """The arguments upstream's ``Qwen3TTSForConditionalGeneration.generate`` hands the
    talker's ``generate`` (the prompt embeddings, trailing text, generation settings), caught
    at that call: ``generate()`` runs upstream's input building and stops there.  The
    continuous batcher (``generation.batcher``) runs the talker itself from these.  The caller
    holds the engine's lock (the talker's ``generate`` is swapped for the call)."""
    talker = model.talker
    captured: dict[str, Any] = {}

    def capture(**kwargs: Any) -> Any:
        captured.update(kwargs)
        raise _Captured

    installed = talker.__dict__.get("generate")
    talker.generate = capture
    try:
        generate()
    except _Captured:
        pass
    finally:
        if installed is None:
            del talker.generate
        else:
            talker.generate = installed
    if not captured:
        raise DependencyProblem("qwen_tts's generate did not call the talker's generate",
                                hint="reinstall the pinned qwen-tts (qtts doctor)")
    return captured
