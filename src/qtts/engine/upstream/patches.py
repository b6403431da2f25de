"""The CPU fast path, installed on a loaded model's instances (qwen_tts's classes are not
modified).

``install(model, precision, int8_kernel)``: low-bit linears (``weights.quant``) in the talker
and code predictor, their fused projections (``generation.layers``), the lean talker and
code-predictor loops in place of the two ``generate`` methods, the native steps
(``generation.native_stack``), and the decoder's lean SnakeBeta and stateful convolutions
(``codec``).  Each patch counts what it replaced and fails loudly when it finds nothing: a
changed upstream shows as a dependency error naming the patch, not as a traceback or a
silent slow path.  The returned ``PatchReport`` is what ``qtts doctor`` prints.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qtts.engine.upstream.imports import PINNED, check_versions, installed_versions
from qtts.errors import DependencyProblem
from qtts.precision import precision as precision_of

log = logging.getLogger(__name__)


@dataclass
class PatchReport:
    """What ``install`` changed on a loaded model: replacements counted per patch."""

    precision: str
    versions: dict[str, str]
    patches: dict[str, int] = field(default_factory=dict)
    activation_dtype: str = ""
    int8_kernel: str = "torch"


def install(model: Any, precision: str, int8_kernel: bool = True, cache_home: Path | None = None,
            model_dir: Path | None = None) -> PatchReport:
    """Install the CPU fast path on a loaded ``Qwen3TTSForConditionalGeneration``.  With
    ``cache_home`` and ``model_dir``, low-bit weights come from (or go to) the weight cache."""
    from qtts.engine import kernels
    from qtts.engine.generation import native_stack
    from qtts.engine.generation.code_predictor import lean_code_predictor
    from qtts.engine.generation.layers import fuse_projections
    from qtts.engine.generation.talker import LeanTalker
    from qtts.engine.weights import cache as weight_cache
    from qtts.engine.weights.quant import Quantizer, saved_tensors

    talker = model.talker
    predictor = talker.code_predictor
    # at every load, not only at the first import: a long-lived process may outlast an upgrade
    report = PatchReport(precision, check_versions())
    kernel = None
    if precision_of(precision).low_bit:
        kernel = kernels.load() if precision == "int8" and int8_kernel else None
        layout = f"{kernel.variant()}-w{kernel.pack_width()}" if kernel is not None else f"torch{PINNED['torch']}"
        cache = (weight_cache.cache_file(cache_home, model_dir, precision, layout)
                 if cache_home is not None and model_dir is not None else None)
        loaded = weight_cache.load(cache) if cache is not None else None
        quantizer = Quantizer(precision, kernel=kernel, cached=loaded[0] if loaded else None)
        # Found must be > 0; replaced may be fewer (too narrow for the scheme, e.g. int4 on a tiny model).
        _require("talker linears", _count_linears(talker.model))
        _require("code predictor linears", _count_linears(predictor))
        report.patches["talker linears quantized"] = quantizer.module(talker.model, "talker.model")
        replacement = quantizer.linear(talker.codec_head, "talker.codec_head")
        report.patches["codec head quantized"] = int(replacement is not talker.codec_head)
        talker.codec_head = replacement
        report.patches["code predictor linears quantized"] = quantizer.module(predictor, "talker.code_predictor")
        report.patches["restored from the weight cache"] = quantizer.restored
        if cache is not None and loaded is None:
            _save_cache(cache, saved_tensors(model), {"model": str(model_dir), "precision": precision,
                                                      "layout": layout})
        fused = fuse_projections(talker.model.layers) + fuse_projections(predictor.model.layers)
        report.patches["projections fused"] = fused
        report.int8_kernel = kernel.variant() if kernel is not None else "torch"
    dtype = activation_dtype(talker, precision, native_kernel=kernel is not None)
    talker_native = predictor_native = None
    if kernel is not None:
        # The talker's weights pass once per frame; the code predictor's are read 15 times, and
        # its first layers may stay in the last-level cache between those passes.
        talker_native = native_stack.build(talker.model, kernel, dtype)
        predictor_native = native_stack.build(predictor.model, kernel, dtype, native_stack.cache_budget())
        report.patches["native decoder steps"] = int(talker_native is not None) + int(predictor_native is not None)
        predictor.__dict__["_qtts_frame"] = native_stack.build_frame(predictor, predictor_native, kernel)
        report.patches["native code-predictor frame"] = int(predictor.__dict__["_qtts_frame"] is not None)
    _require_attributes("code predictor loop", predictor, ("generate", "model", "lm_head", "small_to_mtp_projection"))
    predictor.generate = types.MethodType(lean_code_predictor, predictor)
    predictor.__dict__["_qtts_native"] = predictor_native
    report.patches["code predictor loop"] = 1
    _require_attributes("talker loop", talker, ("generate", "model", "codec_head", "code_predictor"))
    talker.generate = LeanTalker(talker, dtype, talker_native)
    report.patches["talker loop"] = 1
    report.activation_dtype = str(dtype).replace("torch.", "")
    report.patches.update(speed_up_decoder(model.speech_tokenizer))
    report.patches.update(fp32_where_bf16_is_emulated(model))
    return report


def _save_cache(path: Path, tensors: dict[str, Any], metadata: dict[str, str]) -> None:
    from qtts.engine.weights import cache as weight_cache
    from qtts.errors import QttsError

    try:
        weight_cache.save(path, tensors, metadata)
    except QttsError as exc:  # a full disk must not fail the load: the next one quantizes again
        log.warning("could not keep the quantized weights (%s); %s", exc.message, exc.hint)


def _count_linears(module: Any) -> int:
    from torch import nn

    return sum(isinstance(m, nn.Linear) for m in module.modules())


def _require(patch: str, count: int) -> int:
    if count == 0:
        raise DependencyProblem(f"qtts's patch '{patch}' found nothing to patch in qwen_tts "
                                f"{installed_versions()['qwen_tts']}",
                                hint=f"reinstall qwen-tts=={PINNED['qwen_tts']} (the README's install command)")
    return count


def _require_attributes(patch: str, module: Any, names: tuple[str, ...]) -> None:
    missing = [name for name in names if not hasattr(module, name)]
    if missing:
        raise DependencyProblem(f"qtts's patch '{patch}' cannot find {', '.join(missing)} on {type(module).__name__}",
                                hint=f"reinstall qwen-tts=={PINNED['qwen_tts']} (the README's install command)")


def activation_dtype(talker: Any, precision: str, native_kernel: bool = False) -> Any:
    """fp32 activations where qtts's int8 kernel runs (its native steps take fp32: on a Xeon
    with native bf16 and AMX, 97 ms per 1.7B frame against 150 with bf16 activations and the
    Python layers) or where the CPU has no native bf16 (emulated bf16 is slower, and the
    low-bit linears take fp32 as it is), provided that every linear the loops run was
    replaced (a plain bf16 ``nn.Linear`` needs bf16 input); otherwise the model's dtype."""
    import torch
    from torch import nn

    from qtts.engine.weights.quant import fast_bf16_gemm

    model_dtype = next(talker.model.layers.parameters()).dtype
    looped = (talker.model.layers, talker.codec_head, talker.code_predictor)
    all_low_bit = not any(isinstance(m, nn.Linear) for part in looped for m in part.modules())
    if model_dtype == torch.float32 or (precision_of(precision).low_bit and all_low_bit
                                        and (native_kernel or not fast_bf16_gemm())):
        return torch.float32
    return model_dtype


def fp32_where_bf16_is_emulated(model: Any) -> dict[str, int]:
    """On CPUs without native bf16, the parts run once per request in the model's dtype run
    in fp32: the speaker encoder (a 12M-parameter convolutional network) and the talker's text
    projection (two 2048x2048 linears over every text token).  There torch's bf16 convolutions
    are its reference loops and its bf16 GEMM is emulated; measured on the 2-core EPYC: the
    encoder 2.08 of a 4 s reference's 2.63 s prompt, the projection 85 ms of a sentence's
    prompt (102 tokens).  Upstream casts inputs to the model's dtype and uses the outputs in
    it: each module's ``forward`` is wrapped to take its input in fp32 and give its output
    back in the input's dtype.  Counts per part (1 where installed)."""
    import torch

    from qtts.engine.weights.quant import fast_bf16_gemm

    parts = {"speaker encoder in fp32": getattr(model, "speaker_encoder", None),
             "text projection in fp32": getattr(getattr(model, "talker", None), "text_projection", None)}
    counts = {}
    for name, module in parts.items():
        counts[name] = 0
        if module is None or fast_bf16_gemm() or next(module.parameters()).dtype != torch.bfloat16:
            continue
        module.float()
        forward = type(module).forward

        def fp32_forward(self: Any, inputs: Any, *args: Any, _forward: Any = forward, **kwargs: Any) -> Any:
            out = _forward(self, inputs.float(), *args, **kwargs)
            return out.to(inputs.dtype) if isinstance(out, torch.Tensor) else out

        module.forward = types.MethodType(fp32_forward, module)
        counts[name] = 1
    return counts


def speed_up_decoder(speech_tokenizer: Any) -> dict[str, int]:
    """Install a faster SnakeBeta on every one of the decoder's (one native pass where qtts's
    native module builds, else ``codec.decoder.lean_snake_forward``), and the stateful
    convolutions of ``codec.stream`` on its causal (transposed) convolutions, after checking
    the shapes that carrying state from one group of frames to the next relies on."""
    from qwen_tts.core.tokenizer_12hz import modeling_qwen3_tts_tokenizer_v2 as codec

    from qtts.engine import kernels
    from qtts.engine.codec.decoder import (
        lean_snake_forward,
        native_snake_forward,
        prepare_causal_conv,
        prepare_trans_conv,
    )
    from qtts.engine.codec.stream import causal_conv_forward, trans_conv_forward

    native = kernels.load()
    snake_forward = native_snake_forward if native is not None and hasattr(native, "snake") else lean_snake_forward

    counts = {"decoder SnakeBeta": 0, "decoder causal convolutions": 0, "decoder transposed convolutions": 0}
    decoder = speech_tokenizer.model.decoder
    _require_attributes("streaming decoder", decoder, ("quantizer", "pre_conv", "pre_transformer", "upsample",
                                                       "decoder"))
    for module in decoder.modules():
        if isinstance(module, codec.SnakeBeta):
            module.forward = types.MethodType(snake_forward, module)
            counts["decoder SnakeBeta"] += 1
        elif isinstance(module, codec.Qwen3TTSTokenizerV2CausalConvNet):
            if module.stride != 1 or module.padding != module.kernel_size - 1:
                raise _layout_changed("a decoder convolution has a stride")
            prepare_causal_conv(module)
            module.forward = types.MethodType(causal_conv_forward, module)
            counts["decoder causal convolutions"] += 1
        elif isinstance(module, codec.Qwen3TTSTokenizerV2CausalTransConvNet):
            if hasattr(module, "qtts_stride"):  # installed already (one model, two installs)
                counts["decoder transposed convolutions"] += 1
                continue
            stride, kernel = module.conv.stride[0], module.conv.kernel_size[0]
            if module.left_pad != 0 or module.right_pad != kernel - stride or kernel not in (stride, 2 * stride):
                raise _layout_changed("a decoder transposed convolution spans more than two strides")
            prepare_trans_conv(module)
            module.forward = types.MethodType(trans_conv_forward, module)
            counts["decoder transposed convolutions"] += 1
    for name, count in counts.items():
        _require(name, count)
    return counts


def _layout_changed(what: str) -> DependencyProblem:
    return DependencyProblem(f"qtts's streaming decoder cannot carry state: {what} in qwen_tts "
                             f"{installed_versions()['qwen_tts']}",
                             hint=f"reinstall qwen-tts=={PINNED['qwen_tts']} (the README's install command)")


def wrap_talker_generate(talker: Any, wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Any:
    """Replace the talker instance's ``generate`` by ``wrapper(current generate)``; return the
    one it wrapped (the lean loop, once ``install`` ran)."""
    original = talker.generate
    talker.generate = wrapper(original)
    return original
