"""The CPU fast path: low-bit linears (``quant``) and the lean code-predictor loop
(``code_predictor``) installed on qwen_tts's modules.  The model code itself is untouched."""

from __future__ import annotations

import logging
import types
from typing import Any

from qtts.engine.code_predictor import lean_code_predictor
from qtts.engine.quant import Scratch, maybe_quantize, quantize_linears

log = logging.getLogger(__name__)

LOW_BIT = ("int8", "int4")


def apply_fast_path(model: Any, precision: str) -> dict[str, int]:
    """Quantize the talker and code predictor (for ``int8``/``int4``) and install the lean
    code-predictor loop.  ``model`` is the ``Qwen3TTSForConditionalGeneration``."""
    talker = model.talker
    counts = {}
    if precision in LOW_BIT:
        scratch = Scratch()  # one prefill buffer for the whole model
        counts["talker"] = quantize_linears(talker.model, precision, scratch=scratch)
        talker.codec_head = maybe_quantize(talker.codec_head, precision, scratch=scratch)
        counts["code_predictor"] = quantize_linears(talker.code_predictor, precision, scratch=scratch)
    talker.code_predictor.generate = types.MethodType(lean_code_predictor, talker.code_predictor)
    log.debug("fast path %s: %s linears quantized", precision, counts)
    return counts
