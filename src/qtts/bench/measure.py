"""Measure one synthesis path in this process: load, prefill, talker, code predictor, decoder.

Run by ``qtts bench`` in a fresh subprocess per path, so that each path's peak RSS is its
own.  Upstream's times come from hooks on qwen_tts's modules, qtts's from its talker loop
(``LeanTalker.times``), which measures the same spans:
- prefill: the first forward of the talker transformer (``talker.model``);
- talker ms/frame: the other talker-transformer forwards, plus its codec head;
- code predictor ms/frame: ``talker.code_predictor.generate`` (upstream's or the lean loop);
- decoder: ``speech_tokenizer.decode`` (upstream, which decodes the reference again on every
  call) or ``codec.stream`` (qtts), per second of audio produced; qtts's priming of a voice's
  decoder state, once per voice, is reported apart (``decoder_priming_s``).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from qtts.bench.voices import DESCRIPTION, OTHER_TEXT, REF_TEXT, SPEAKER, STYLE, TEXT, bench_voice, reference_audio


@dataclass
class Timers:
    calls: int = 0
    prefill_s: float = 0.0
    talker_s: float = 0.0
    code_predictor_s: float = 0.0
    decoder_s: float = 0.0
    decoder_priming_s: float = 0.0
    _started: dict = field(default_factory=dict)


def attach(tts: Any) -> Timers:
    """Install timing hooks on the loaded ``Qwen3TTSModel``."""
    timers = Timers()
    talker = tts.model.talker

    def before(_module: Any, _args: Any) -> None:
        timers._started["talker"] = time.perf_counter()

    def after(_module: Any, _args: Any, _output: Any) -> None:
        elapsed = time.perf_counter() - timers._started["talker"]
        timers.calls += 1
        if timers.calls == 1:
            timers.prefill_s += elapsed
        else:
            timers.talker_s += elapsed

    talker.model.register_forward_pre_hook(before)
    talker.model.register_forward_hook(after)
    talker.codec_head.register_forward_pre_hook(before)
    talker.codec_head.register_forward_hook(lambda m, a, o: _add(timers, "talker_s", "talker"))

    talker.code_predictor.generate = _timed(talker.code_predictor.generate, timers, "code_predictor_s")
    tts.model.speech_tokenizer.decode = _timed(tts.model.speech_tokenizer.decode, timers, "decoder_s")
    # qtts decodes through codec_stream; priming a voice's decoder state (once per voice, then
    # kept) is timed apart.  This process measures one path, so patching the class here
    # touches nothing else.
    from qtts.engine.codec import stream as codec_stream

    codec_stream.StreamDecoder.decode = _timed(codec_stream.StreamDecoder.decode, timers, "decoder_s")
    codec_stream._primed = _timed(codec_stream._primed, timers, "decoder_priming_s")
    return timers


def _timed(function: Any, timers: Timers, name: str) -> Any:
    """Wrap ``function`` so that its wall time adds to ``timers.<name>``."""
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            setattr(timers, name, getattr(timers, name) + time.perf_counter() - started)

    return timed


def _add(timers: Timers, name: str, key: str) -> None:
    setattr(timers, name, getattr(timers, name) + time.perf_counter() - timers._started[key])


def measure(path: str, model_dir: str, frames: int, threads: int, precision: str, batch: int, seed: int,
            decoder_precision: str = "fp32", int8_kernel: bool = True, attention: str = "sdpa") -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    started = time.perf_counter()
    first_audio = None
    if path == "upstream":
        tts, generate = _upstream(model_dir, frames, seed, attention)
    else:
        tts, generate, first_audio = _qtts(model_dir, frames, precision, decoder_precision, batch, seed, int8_kernel)
    load_s = time.perf_counter() - started
    rss_after_load = _peak_rss()
    timers = attach(tts)
    started = time.perf_counter()
    audio_s, frames_made = generate()
    total_s = time.perf_counter() - started
    if path == "qtts":  # one talker call generated every frame (all chunks are one batch)
        loop = tts.model.talker_loop_for_bench
        timers.prefill_s, timers.talker_s = loop.times.prefill_s, loop.times.talker_s
        timers.code_predictor_s = loop.times.code_predictor_s
    per_step = max(frames_made, 1) / (batch if path == "qtts" else 1)  # generation steps
    result = {
        "path": path, "precision": "fp32" if path == "upstream" else precision, "threads": threads,
        "attention": attention if path == "upstream" else "sdpa",
        "weight_gb_per_frame": round(weight_bytes_per_frame(tts) / 1e9, 3),
        "decoder_precision": "fp32" if path == "upstream" else decoder_precision,
        "batch": batch if path == "qtts" else 1, "frames": frames_made,
        "int8_kernel": "qtts" if path == "qtts" and precision == "int8" and _uses_qtts_kernel(tts) else "torch",
        "load_s": round(load_s, 2), "peak_rss_gb": round(_peak_rss() / 1e9,
                                                         2), "rss_after_load_gb": round(rss_after_load / 1e9, 2),
        "prefill_s": round(timers.prefill_s, 3),
        "talker_ms_per_step": round(timers.talker_s / per_step * 1000, 1),
        "code_predictor_ms_per_step": round(timers.code_predictor_s / per_step * 1000, 1),
        "decoder_s_per_audio_s": round(timers.decoder_s / audio_s, 3) if audio_s else None,
        **({"decoder_priming_s": round(timers.decoder_priming_s, 3)} if path == "qtts" else {}),
        "audio_s": round(audio_s, 2), "total_s": round(total_s, 2),
        "rtf": round(total_s / audio_s, 3) if audio_s else None,
    }
    # First audio of the same sentence, like for like: qtts streams it (measured after the
    # timed run, from the call to the first audio handed out); upstream returns the whole
    # sentence at once, so its first audio is its total time.
    result["time_to_first_audio_s"] = round(first_audio() if first_audio is not None else total_s, 2)
    # upstream computes every prompt whole: the same for a voice it has spoken with before
    result["time_to_first_audio_known_voice_s"] = round(first_audio(True) if first_audio is not None else total_s, 2)
    if path == "qtts":
        result["decoder_gflop_per_audio_s"] = decoder_gflop_per_audio_s(tts)
    return result


def weight_bytes_per_frame(tts: Any) -> int:
    """Bytes of weights one generation step reads: the talker's layers and codec head once,
    the code predictor's layers (and input projection) 15 times, and each of its 15 heads
    once.  Embedding tables are not counted (a step reads one row)."""
    talker = tts.model.talker
    predictor = talker.code_predictor
    steps = len(predictor.lm_head)
    once = _bytes(talker.model.layers, talker.model.norm, talker.codec_head, predictor.lm_head)
    per_step = _bytes(predictor.model.layers, predictor.model.norm, predictor.small_to_mtp_projection)
    return once + steps * per_step


def _bytes(*modules: Any) -> int:
    seen, total = set(), 0
    for module in modules:
        for tensor in (*module.parameters(), *module.buffers()):
            if tensor.data_ptr() not in seen:
                seen.add(tensor.data_ptr())
                total += tensor.numel() * tensor.element_size()
    return total


def decoder_gflop_per_audio_s(tts: Any, frames: int = 25) -> float:
    """The decoder's FLOPs per second of audio, counted by torch on a decode of ``frames``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from qtts.engine.codec.decoder import plain_convolutions

    codes = torch.zeros((frames, 16), dtype=torch.long)
    with FlopCounterMode(display=False) as counter, plain_convolutions():
        tts.model.speech_tokenizer.decode([{"audio_codes": codes}])
    return float(f"{counter.get_total_flops() / 1e9 / (frames / 12.5):.4g}")


def _upstream(model_dir: str, frames: int, seed: int, attention: str = "sdpa"):  # noqa: ANN202
    """Upstream as a user runs it: the model kind's own method (``generate_voice_clone``,
    ``generate_custom_voice`` or ``generate_voice_design``), fp32, ``attention`` (sdpa is what
    from_pretrained picks by default; eager is the planning document's configuration)."""
    import torch

    from qtts.engine.upstream import import_qwen_tts
    from qtts.hub import BASE, CUSTOM_VOICE, resolve_model

    qwen_tts = import_qwen_tts()
    tts = qwen_tts.Qwen3TTSModel.from_pretrained(model_dir, device_map="cpu", dtype=torch.float32,
                                                 attn_implementation=attention)
    model = resolve_model(model_dir)
    cap = {"language": "English", "max_new_tokens": frames + 1}
    if model.tts_model_type == BASE:
        prompt = tts.create_voice_clone_prompt(ref_audio=reference_audio(), ref_text=REF_TEXT)
        run = lambda: tts.generate_voice_clone(text=TEXT, voice_clone_prompt=prompt, **cap)  # noqa: E731
    elif model.tts_model_type == CUSTOM_VOICE:
        style = STYLE if model.takes_instructions else None
        run = lambda: tts.generate_custom_voice(text=TEXT, speaker=SPEAKER, instruct=style, **cap)  # noqa: E731
    else:
        run = lambda: tts.generate_voice_design(text=TEXT, instruct=DESCRIPTION, **cap)  # noqa: E731

    def generate() -> tuple[float, int]:
        torch.manual_seed(seed)
        wavs, rate = run()
        return len(wavs[0]) / rate, len(wavs[0]) // 1920

    return tts, generate


def _uses_qtts_kernel(tts: Any) -> bool:
    from qtts.engine.weights.quant import Int8Linear

    return any(isinstance(m, Int8Linear) and m.kernel is not None for m in tts.model.talker.modules())


def _qtts(model_dir: str, frames: int, precision: str, decoder_precision: str, batch: int, seed: int,  # noqa: ANN202
          int8_kernel: bool = True):
    from qtts import audio as audio_mod
    from qtts.engine.core import Engine, SynthesisOptions
    from qtts.settings import Settings

    settings = Settings.resolve({"model_id": model_dir, "precision": precision, "decoder_precision": decoder_precision,
                                 "memory_check": False, "int8_kernel": int8_kernel}, environ={})
    engine = Engine.load(settings)
    reference = audio_mod.prepare_reference(audio_mod.Audio(reference_audio()[0]), 30)
    prompt = bench_voice(engine.model, lambda: engine.create_prompt(reference, REF_TEXT, False))
    text = " ".join([TEXT] * batch)
    options = SynthesisOptions(language="English", seed=seed, max_frames=frames, retry_runaway=False,
                               batch_size=batch, split_max_chars=len(TEXT) + 1, gap_s=0.0)

    engine._tts.model.talker_loop_for_bench = engine.talker_loop

    def generate() -> tuple[float, int]:
        result = engine.synthesize(text, prompt, options)
        return result.audio.duration_s, sum(c.frames for c in result.chunks)

    def first_audio(known_voice: bool = False) -> float:
        """From the call to the first audio handed out.  Cold: nothing kept from the runs
        before.  Known voice: the voice spoke another sentence just before (a server's case),
        so the prompt rows the two share are reused (engine.prefix_cache); never this very
        sentence, which would be reused whole."""
        prefixes = engine.talker_loop.prefixes
        if prefixes is not None:
            prefixes.clear()
            if known_voice:
                engine.synthesize(OTHER_TEXT, prompt, SynthesisOptions(language="English", seed=seed, max_frames=1,
                                                                        retry_runaway=False))
        heard = []
        started = time.perf_counter()
        stream = engine.stream(TEXT, prompt, SynthesisOptions(language="English", seed=seed, max_frames=frames,
                                                              retry_runaway=False, split_max_chars=len(TEXT) + 1),
                               should_cancel=lambda: bool(heard))
        next(iter(stream))
        elapsed = time.perf_counter() - started
        heard.append(True)  # stop the rest of the sentence at its next frame
        try:
            for _ in stream:
                pass
        except Exception:  # the cancellation surfaces as an error at the end of the stream
            pass
        return elapsed

    return engine._tts, generate, first_audio


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    args = json.loads(sys.argv[1])
    kind = args.pop("kind", "measure")
    if kind == "fidelity":
        from qtts.bench.fidelity import fidelity

        result = fidelity(**args)
    elif kind == "limits":
        from qtts.bench import machine

        threads = int(__import__("os").environ.get("OMP_NUM_THREADS", "2"))
        result = {"read_gbs": machine.read_bandwidth_gbs(threads), "gemm_gflops": machine.gemm_gflops(threads)}
    else:
        result = measure(**args)
    sys.stdout.write("QTTS_BENCH_RESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
