"""Prompt prefix reuse (engine.prefix_cache) in the talker's prefill, through real qwen_tts on
the tiny checkpoint: a second text in the same voice starts from the first prompt's keys and
values, and gets the prefill a full one gives (to float rounding); fp32 never reuses."""

import torch

from qtts.engine.generation.talker import _KVCache
from qtts.engine.upstream import calls as generation

GREEDY = {"do_sample": False, "subtalker_dosample": False}


def _prompt(engine, seconds=3.0, text="Hello there, this is a test."):
    from qtts import audio as audio_mod
    from qtts.doctor import smoke_reference

    reference = audio_mod.prepare_reference(smoke_reference(seconds), 30)
    return engine.create_prompt(reference, text, False)


def _inputs(engine, prompt, text):
    return generation.talker_request(engine._tts, text, "English", prompt, max_new_tokens=8, **GREEDY)["inputs_embeds"]


def _prefill(loop, inputs):
    cache = _KVCache(loop.talker.model, 1, inputs.shape[1], 8, loop.dtype)
    with torch.inference_mode():
        logits, _, _ = loop.prefill(inputs, torch.ones(inputs.shape[:2], dtype=torch.bool), cache)
    length = inputs.shape[1]
    return logits, cache.keys[:, 0, :, :length].clone(), cache.values[:, 0, :,
                                                                      :length].clone(), loop.times.prefill_reused


def test_a_second_text_in_the_same_voice_reuses_the_shared_prompt_rows(tiny_engine):
    loop = tiny_engine.talker_loop
    assert loop.prefixes is not None  # the int8 default with qtts's kernel
    prompt = _prompt(tiny_engine)
    first = _inputs(tiny_engine, prompt, "The first text, which is spoken first.")
    second = _inputs(tiny_engine, prompt, "Something else entirely, said later on.")
    shared_rows = int((first[0, :min(first.shape[1], second.shape[1])] == second[0, :min(first.shape[1],
                                                                                         second.shape[1])])
                      .all(-1).int().argmin())
    assert shared_rows >= 4  # the voice's part of the prompt

    loop.prefixes.clear()
    cold_logits, cold_keys, cold_values, reused = _prefill(loop, second)
    assert reused == 0
    loop.prefixes.clear()
    _prefill(loop, first)
    logits, keys, values, reused = _prefill(loop, second)
    assert reused == shared_rows
    assert torch.allclose(logits, cold_logits, rtol=1e-4, atol=1e-4)
    assert torch.allclose(keys, cold_keys, rtol=1e-4, atol=1e-4)
    assert torch.allclose(values, cold_values, rtol=1e-4, atol=1e-4)
    # A prompt of another voice shares only the rows before its speaker: fewer are reused.
    other = _inputs(tiny_engine, _prompt(tiny_engine, seconds=2.0, text="Another voice speaking."),
                    "Something else entirely, said later on.")
    *_, reused = _prefill(loop, other)
    assert reused < shared_rows


def test_the_same_request_twice_gives_the_same_codes_with_reuse(tiny_engine):
    prompt = _prompt(tiny_engine)
    tiny_engine.talker_loop.prefixes.clear()
    text = "Hello world, spoken twice."
    first = generation.generate(tiny_engine._tts, [text], "English", prompt, max_new_tokens=10, **GREEDY)[0]
    second = generation.generate(tiny_engine._tts, [text], "English", prompt, max_new_tokens=10, **GREEDY)[0]
    assert tiny_engine.talker_loop.times.prefill_reused > 0
    assert torch.equal(first, second)


def test_fp32_never_reuses_a_prefix(tiny_model):
    from qtts.engine.core import Engine
    from qtts.settings import Settings

    engine = Engine.load(Settings.resolve({"model_id": str(tiny_model), "precision": "fp32"}, environ={}))
    assert engine.talker_loop.prefixes is None
