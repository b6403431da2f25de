"""The CPU fast path: low-bit linears (``quant``) and the lean code-predictor loop
(``code_predictor``) installed on qwen_tts's modules.  The model code itself is untouched."""

from __future__ import annotations

import logging
import types
from typing import Any

from qtts.engine.code_predictor import lean_code_predictor
from qtts.engine import kernels
from qtts.engine.quant import Quantizer

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
    talker.code_predictor.generate = types.MethodType(lean_code_predictor, talker.code_predictor)
    log.debug("fast path %s: %s linears quantized", precision, counts)
    return counts
