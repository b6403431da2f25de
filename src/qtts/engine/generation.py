"""Generation and decoding around qwen_tts's own pieces, without its wasteful last step.

``Qwen3TTSModel.generate_voice_clone`` tokenizes, runs the talker (``model.generate``),
then decodes the reference codes *and* the new codes together and cuts the reference
audio off again: in ICL mode every call re-decodes the 3-15 s reference.  ``generate``
below calls the same tokenization and ``model.generate``; ``decode`` decodes only the new
frames, carrying the decoder's state from the reference (``codec_stream``: the same
waveform, without the reference's cost).  Several texts go through ``model.generate`` as
one batch: the weights are read once per frame for all of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qtts.engine.prompts import DesignedVoice, SpeakerVoice, Voice, VoicePrompt

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
    build them, with their defaults (``upstream.generation_inputs``)."""
    from qtts.engine.upstream import generation_inputs

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
    """What upstream's generation hands the talker for one text (``upstream.talker_inputs``):
    the prompt embeddings, trailing text and generation settings of one stream of the
    continuous batcher."""
    from qtts.engine.upstream import talker_inputs

    return talker_inputs(tts.model, lambda: generate(tts, [text], language, voice, **generate_kwargs))


def decode(tts: Any, codes: list[Any], voice: Voice) -> list[np.ndarray]:
    """Waveforms of the new frames only (24 kHz float32), one per code tensor: as upstream's
    decode of the reference and the new frames together would give them, without decoding
    the reference again (``codec_stream``)."""
    from qtts.engine.codec_stream import StreamDecoder

    ref_code = voice.ref_code if isinstance(voice, VoicePrompt) else None
    return [StreamDecoder(tts.model.speech_tokenizer, ref_code).decode(frames) for frames in codes]
