"""Loading a Qwen3-TTS model on the CPU: upstream's ``from_pretrained`` with the right dtype,
the decoder's precision, qtts's fast path (``upstream.install``), and every failure
classified (memory, dependency, model)."""

from __future__ import annotations

import time
from typing import Any

from qtts.engine import memory, upstream
from qtts.errors import BadInput, DependencyProblem, MemoryShortage, ModelUnavailable
from qtts.hub import ResolvedModel
from qtts.precision import precision as precision_of
from qtts.settings import FALLBACK_MODEL_ID, Settings


def load_model(resolved: ResolvedModel, settings: Settings) -> tuple[Any, "upstream.PatchReport", float]:
    """(the loaded ``Qwen3TTSModel``, the patch report, seconds taken)."""
    qwen_tts = upstream.import_qwen_tts()
    import torch

    if settings.cpu_threads:
        torch.set_num_threads(settings.cpu_threads)
    # Low-bit paths load bf16 (a lazy memory map: low peak RSS) and quantize the linears.
    dtype = getattr(torch, precision_of(settings.precision).load_dtype)
    started = time.perf_counter()
    try:
        tts = qwen_tts.Qwen3TTSModel.from_pretrained(
            str(resolved.path),
            device_map="cpu",
            dtype=dtype,
            attn_implementation=settings.attn_implementation,
            low_cpu_mem_usage=settings.low_cpu_mem_usage,
        )
    except MemoryError as exc:
        raise MemoryShortage(f"ran out of memory loading {resolved.model_id}",
                             hint=f"use --model-id {FALLBACK_MODEL_ID} or --precision int4") from exc
    except ImportError as exc:
        raise DependencyProblem(f"loading {resolved.model_id} needs a missing library: {exc}",
                                hint="run 'qtts doctor' and reinstall with the README's install command") from exc
    except Exception as exc:  # safetensors, torch and transformers raise many types; classify by content
        if "memory" in str(exc).lower() or "alloc" in str(exc).lower():
            raise MemoryShortage(f"ran out of memory loading {resolved.model_id}",
                                 hint=f"use --model-id {FALLBACK_MODEL_ID} or --precision int4") from exc
        raise ModelUnavailable(f"{resolved.model_id} failed to load: {_first_line(exc)}",
                               hint="the files may be corrupt or of another model: "
                                    "re-download with 'qtts models pull'") from exc
    tts.model.eval()
    _set_decoder_precision(tts, resolved, settings.decoder_precision, dtype)
    patches = upstream.install(tts.model, settings.precision, settings.int8_kernel,
                               settings.home if settings.weight_cache else None, resolved.path)
    memory.trim_heap()
    return tts, patches, time.perf_counter() - started


def check_decoder_precision(decoder_precision: str) -> None:
    """A bf16 decoder where the CPU has no native bf16 is emulated: measured over 13 minutes
    for 4.8 s of audio on an AVX2 EPYC, against ~5 s in fp32.  Refuse it with the fix."""
    from qtts.engine.weights.quant import fast_bf16_gemm

    if decoder_precision == "bf16" and not fast_bf16_gemm():
        raise BadInput("a bf16 decoder is emulated on this CPU (no AVX512-BF16 or AMX) and runs many times slower",
                       hint="use --decoder-precision fp32 (the default)")


def _set_decoder_precision(tts: Any, resolved: ResolvedModel, decoder_precision: str, loaded: Any) -> None:
    """The speech tokenizer is loaded with the model's dtype; its published weights are fp32,
    so an fp32 decoder beside a bf16 model is loaded again from disk (converting bf16 back
    would keep the rounding)."""
    import torch

    wanted = torch.float32 if decoder_precision == "fp32" else torch.bfloat16
    if wanted == loaded:
        return
    if wanted == torch.bfloat16:
        tts.model.speech_tokenizer.model.to(torch.bfloat16)
        return
    from qwen_tts import Qwen3TTSTokenizer

    tokenizer = Qwen3TTSTokenizer.from_pretrained(str(resolved.path / "speech_tokenizer"), device_map="cpu",
                                                  dtype=torch.float32)
    tts.model.load_speech_tokenizer(tokenizer)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]
