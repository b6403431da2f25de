"""Generation and decoding around qwen_tts's own pieces, without its wasteful last step.

``Qwen3TTSModel.generate_voice_clone`` tokenizes, runs the talker (``model.generate``),
then decodes the reference codes *and* the new codes together and cuts the reference
audio off again: in ICL mode every call re-decodes the 3-15 s reference.  ``generate``
below calls the same tokenization and ``model.generate``; ``decode`` decodes only the new
frames, with a bounded left context of reference frames so the first new frames sound as
they would after the reference (the decoder itself decodes long inputs in chunks with a
25-frame left context, so this is the context it is built for).  Several texts go through
``model.generate`` as one batch: the weights are read once per frame for all of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qtts.engine.prompts import DesignedVoice, SpeakerVoice, Voice, VoicePrompt

SAMPLES_PER_FRAME = 1920
LEFT_CONTEXT_FRAMES = 25


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


def decode(tts: Any, codes: list[Any], voice: Voice, left_context: int = LEFT_CONTEXT_FRAMES) -> list[np.ndarray]:
    """Waveforms of the new frames only (24 kHz float32), one per code tensor."""
    import torch

    context = None
    ref_code = voice.ref_code if isinstance(voice, VoicePrompt) else None
    if ref_code is not None and left_context > 0:
        context = ref_code[-left_context:].to(torch.long)
    batch = []
    for frames in codes:
        frames = frames.to(torch.long)
        batch.append({"audio_codes": torch.cat([context, frames], dim=0) if context is not None else frames})
    nonempty = [i for i, c in enumerate(codes) if len(c) > 0]
    wavs: list[np.ndarray] = [np.zeros(0, dtype=np.float32) for _ in codes]
    if not nonempty:
        return wavs
    decoded, _ = tts.model.speech_tokenizer.decode([batch[i] for i in nonempty])
    skip = 0 if context is None else len(context) * SAMPLES_PER_FRAME
    for index, wav in zip(nonempty, decoded):
        wavs[index] = np.asarray(wav[skip:skip + len(codes[index]) * SAMPLES_PER_FRAME], dtype=np.float32)
    return wavs
