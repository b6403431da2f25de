"""Fidelity of qtts's paths against fp32 upstream, on the same checkpoint.

1. Greedy codes: upstream's loop (transformers ``generate`` for talker and code predictor)
   and qtts's fp32 path (lean code-predictor loop, new-frames decoding) must produce
   identical codes.
2. Low-bit / bf16 paths: teacher-forced logits.  The fp32 greedy run records the exact
   input sequence of the talker (and of the code predictor for each frame); each path then
   runs one causal forward over that same sequence, and its logits are compared with fp32's
   at every step: cosine similarity and top-1 agreement.  "<path> generation loops" feeds
   the same inputs step by step through the loops synthesis runs (prefill, then one native
   or Python step per frame; the lean code predictor), to measure what users get.
3. Decoder: SNR of each path's waveform for the fp32 codes against the fp32 decoder's, and
   of new-frames-only decoding (bounded left context) against upstream's full re-decode.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qtts.bench.voices import REF_TEXT, TEXT, bench_voice, reference_audio


def fidelity(model_dir: str, frames: int, threads: int, precisions: list[str], seed: int = 0) -> dict[str, Any]:
    import torch

    from qtts.engine.prompts import VoicePrompt
    from qtts.engine.upstream import calls as generation
    from qtts.engine.upstream import import_qwen_tts, install
    from qtts.hub import resolve_model

    torch.set_num_threads(threads)
    qwen_tts = import_qwen_tts()
    reference = qwen_tts.Qwen3TTSModel.from_pretrained(model_dir, device_map="cpu", dtype=torch.float32,
                                                       attn_implementation="sdpa")

    def clone() -> VoicePrompt:
        (item,) = reference.create_voice_clone_prompt(ref_audio=reference_audio(), ref_text=REF_TEXT)
        return VoicePrompt("bench", False, item.ref_spk_embedding, item.ref_code, REF_TEXT)

    prompt = bench_voice(resolve_model(model_dir), clone)
    ref_code = prompt.ref_code if isinstance(prompt, VoicePrompt) else upstream_codes_context()
    greedy = {"do_sample": False, "subtalker_dosample": False, "max_new_tokens": frames + 1}

    recorder = _InputRecorder(reference.model.talker)
    upstream_codes = generation.generate(reference, [TEXT], "English", prompt, **greedy)[0]
    recorder.stop()
    upstream_wave, _ = reference.model.speech_tokenizer.decode(
        [{"audio_codes": torch.cat([ref_code, upstream_codes])}])
    upstream_new = upstream_wave[0][len(ref_code) * 1920:]

    install(reference.model, "fp32")
    qtts_codes = generation.generate(reference, [TEXT], "English", prompt, **greedy)[0]
    qtts_new = generation.decode(reference, [upstream_codes], prompt)[0]
    report: dict[str, Any] = {
        "frames": int(len(upstream_codes)),
        "fp32_codes_identical": bool(torch.equal(upstream_codes, qtts_codes)),
        "new_frames_decode_snr_db": _snr(upstream_new, qtts_new),
        "paths": {},
    }
    fp32_logits = recorder.logits(reference.model.talker)
    fp32_wave = generation.decode(reference, [upstream_codes], prompt)[0]
    reference = None  # free fp32 memory before the other paths load

    for precision in precisions:
        model = qwen_tts.Qwen3TTSModel.from_pretrained(model_dir, device_map="cpu", dtype=torch.bfloat16,
                                                       attn_implementation="sdpa")
        install(model.model, precision)
        for name, logits in ((precision, recorder.logits(model.model.talker)),
                             (f"{precision} generation loops", recorder.loop_logits(model.model.talker))):
            report["paths"][name] = {
                **{f"talker_{k}": v for k, v in _compare(fp32_logits["talker"], logits["talker"]).items()},
                **{f"code_predictor_{k}": v
                   for k, v in _compare(fp32_logits["code_predictor"], logits["code_predictor"]).items()},
            }
        if "bf16_decoder_snr_db" not in report:  # the speech tokenizer as loaded with a bf16 model
            from qtts.engine.weights.quant import fast_bf16_gemm

            # emulated bf16 takes minutes per second of audio: not measured where it is refused
            report["bf16_decoder_snr_db"] = (_snr(fp32_wave, generation.decode(model, [upstream_codes], prompt)[0])
                                             if fast_bf16_gemm() else None)
        del model
    return report


class _InputRecorder:
    """Records the talker's per-step inputs (embeddings, rope positions) and the code
    predictor's per-frame inputs and chosen codes during a generation."""

    def __init__(self, talker: Any) -> None:
        self.talker_inputs: list[tuple[Any, Any]] = []
        self.predictor_inputs: list[tuple[Any, Any]] = []
        self._handle = talker.model.register_forward_pre_hook(self._on_talker, with_kwargs=True)
        self._predictor = talker.code_predictor
        self._generate = talker.code_predictor.generate

        def recording_generate(*args: Any, **kwargs: Any) -> Any:
            result = self._generate(*args, **kwargs)
            self.predictor_inputs.append((kwargs["inputs_embeds"].detach().float(), result.sequences.detach()))
            return result

        talker.code_predictor.generate = recording_generate

    def _on_talker(self, _module: Any, _args: Any, kwargs: dict) -> None:
        self.talker_inputs.append((kwargs["inputs_embeds"].detach().float(), kwargs["position_ids"].detach()))

    def stop(self) -> None:
        self._handle.remove()
        self._predictor.generate = self._generate

    def logits(self, talker: Any) -> dict[str, Any]:
        """One teacher-forced causal forward per model part over the recorded inputs."""
        import torch

        dtype = talker.model.norm.weight.dtype
        with torch.inference_mode():
            embeds = torch.cat([e for e, _ in self.talker_inputs], dim=1).to(dtype)
            positions = torch.cat([p for _, p in self.talker_inputs], dim=-1)
            hidden = talker.model(inputs_embeds=embeds, position_ids=positions, use_cache=False).last_hidden_state
            prefill = self.talker_inputs[0][0].shape[1]
            talker_logits = talker.codec_head(hidden[:, prefill - 1:]).float()[0]
            predictor = talker.code_predictor
            rows = []
            for inputs, codes in self.predictor_inputs:
                steps = [predictor.model.get_input_embeddings()[i](codes[:,
                                                                         i:i + 1]) for i in range(codes.shape[1] - 1)]
                sequence = predictor.small_to_mtp_projection(torch.cat([inputs.to(dtype),
                                                                        *[s.to(dtype) for s in steps]], dim=1))
                out = predictor.model(inputs_embeds=sequence, use_cache=False).last_hidden_state
                rows.append(torch.stack([predictor.lm_head[i](out[:,
                                                                  1 + i]).float()[0] for i in range(codes.shape[1])]))
            predictor_logits = torch.cat(rows)
        return {"talker": talker_logits, "code_predictor": predictor_logits}


    def loop_logits(self, talker: Any) -> dict[str, Any]:
        """The same inputs, teacher-forced, through qtts's generation loops as synthesis runs
        them: the lean talker's prefill and then one step per frame (the native step where it
        is installed), and the lean code predictor with the recorded codes as its choices."""
        import torch

        from qtts.engine.generation.code_predictor import Sampling, predict_frame
        from qtts.engine.generation.talker import _KVCache

        loop = talker.generate
        with torch.inference_mode():
            prompt, _ = self.talker_inputs[0]
            steps = self.talker_inputs[1:]
            cache = _KVCache(talker.model, 1, prompt.shape[1], len(steps) + 1, loop.dtype)
            logits, _, _ = loop.prefill(prompt.to(loop.dtype), torch.ones((1, prompt.shape[1]), dtype=torch.bool),
                                        cache)
            talker_rows = [logits[0]]
            for index, (embeds, positions) in enumerate(steps):
                start, position = prompt.shape[1] + index, positions[0]  # text positions: one rope section
                if loop.native is not None:
                    hidden = loop.native_step(embeds.to(loop.dtype), position, cache.rows(start), [0])
                else:
                    hidden = loop._layers(embeds.to(loop.dtype), position, cache, start, None)
                talker_rows.append(loop.head(hidden)[0][0])
            predictor_rows = [predict_frame(talker.code_predictor, inputs.to(loop.dtype), [Sampling()], forced=codes,
                                            keep_logits=True).logits[0].float()
                              for inputs, codes in self.predictor_inputs]
        return {"talker": torch.stack(talker_rows).float(), "code_predictor": torch.cat(predictor_rows)}


def upstream_codes_context() -> Any:
    """No reference codes (CustomVoice, VoiceDesign): upstream decodes the new codes alone."""
    import torch

    return torch.zeros((0, 16), dtype=torch.long)


def _compare(reference: Any, test: Any) -> dict[str, float]:
    import torch

    n = min(len(reference), len(test))
    reference, test = reference[:n], test[:n]
    cosine = torch.nn.functional.cosine_similarity(reference, test, dim=-1)
    agree = (reference.argmax(-1) == test.argmax(-1)).float().mean()
    return {"logit_cosine_mean": round(float(cosine.mean()), 4), "logit_cosine_min": round(float(cosine.min()), 4),
            "top1_agreement": round(float(agree), 4)}


def _snr(reference: np.ndarray, test: np.ndarray) -> float:
    n = min(len(reference), len(test))
    reference = np.asarray(reference[:n], dtype=np.float64)
    noise = reference - np.asarray(test[:n], dtype=np.float64)
    return round(float(10 * np.log10(np.sum(reference**2) / max(np.sum(noise**2), 1e-20))), 1)
