"""The CPU fast path installed on a loaded qwen_tts model: low-bit linears (``quant``)
replace the talker's and code predictor's ``nn.Linear`` modules, and the lean loops replace
the ``generate`` methods of the talker instance (``talker``) and of its code predictor
(``code_predictor``).  qwen_tts's classes are not modified; these instances are."""

from __future__ import annotations

import logging
import types
from typing import Any

from qtts.engine import kernels
from qtts.engine.code_predictor import lean_code_predictor
from qtts.engine.layers import fuse_projections
from qtts.engine.quant import Quantizer, fast_bf16_gemm
from qtts.engine.talker import LeanTalker

log = logging.getLogger(__name__)

LOW_BIT = ("int8", "int4")


def apply_fast_path(model: Any, precision: str, int8_kernel: bool = True) -> dict[str, int]:
    """Quantize the talker and code predictor (for ``int8``/``int4``) and install the lean
    code-predictor loop.  ``model`` is the ``Qwen3TTSForConditionalGeneration``;
    ``int8_kernel`` allows qtts's VNNI kernel where it builds and runs (``engine.kernels``)."""
    talker = model.talker
    counts = {}
    if precision in LOW_BIT:
        quantizer = Quantizer(precision, kernel=kernels.load() if precision == "int8" and int8_kernel else None)
        counts["talker"] = quantizer.module(talker.model)
        talker.codec_head = quantizer.linear(talker.codec_head)
        counts["code_predictor"] = quantizer.module(talker.code_predictor)
        counts["fused"] = fuse_projections(talker.model.layers) + fuse_projections(talker.code_predictor.model.layers)
    talker.code_predictor.generate = types.MethodType(lean_code_predictor, talker.code_predictor)
    talker.generate = LeanTalker(talker, activation_dtype(talker, precision))
    log.debug("fast path %s: %s linears quantized", precision, counts)
    return counts


def activation_dtype(talker: Any, precision: str) -> Any:
    """fp32 activations where the CPU has no native bf16 (emulated bf16 is slower, and the
    low-bit linears take fp32 as it is), provided that every linear the loops run was
    replaced (a plain bf16 ``nn.Linear`` needs bf16 input); otherwise the model's dtype."""
    import torch
    from torch import nn

    model_dtype = next(talker.model.layers.parameters()).dtype
    looped = (talker.model.layers, talker.codec_head, talker.code_predictor)
    all_low_bit = not any(isinstance(m, nn.Linear) for part in looped for m in part.modules())
    if model_dtype == torch.float32 or (precision in LOW_BIT and all_low_bit and not fast_bf16_gemm()):
        return torch.float32
    return model_dtype
