"""The CPU fast path: low-bit linears and a lean code-predictor loop around qwen_tts's modules.

Upstream runs the code predictor (5 layers, 15 sequential steps per frame) through
transformers' ``generate()`` once per frame.  With low-bit weights its matrices are small
enough that per-step overhead dominates, so ``lean_code_predictor`` replaces that call with
a plain loop over the same submodules (``small_to_mtp_projection``, ``model``, ``lm_head[i]``,
``codec_embedding[i]``) and the same sampling rule (temperature, top-k, top-p, then a
multinomial draw; argmax when greedy).  The model code itself is untouched.
"""

from __future__ import annotations

import logging
import types
from typing import Any

import torch
from torch import nn

from qtts.engine.quant import maybe_quantize, quantize_linears

log = logging.getLogger(__name__)

LOW_BIT = ("int8", "int4")


def apply_fast_path(model: Any, precision: str) -> dict[str, int]:
    """Quantize the talker and code predictor (for ``int8``/``int4``) and install the lean
    code-predictor loop.  ``model`` is the ``Qwen3TTSForConditionalGeneration``."""
    talker = model.talker
    counts = {}
    if precision in LOW_BIT:
        counts["talker"] = quantize_linears(talker.model, precision)
        talker.codec_head = maybe_quantize(talker.codec_head, precision)
        counts["code_predictor"] = quantize_linears(talker.code_predictor, precision)
    talker.code_predictor.generate = types.MethodType(lean_code_predictor, talker.code_predictor)
    log.debug("fast path %s: %s linears quantized", precision, counts)
    return counts


class _Sequences:
    def __init__(self, sequences: torch.Tensor) -> None:
        self.sequences = sequences


@torch.inference_mode()
def lean_code_predictor(self: nn.Module, inputs_embeds: torch.Tensor, max_new_tokens: int,
                        do_sample: bool = True, top_p: float = 1.0, top_k: int = 50, temperature: float = 1.0,
                        **_: Any) -> _Sequences:
    """Drop-in for ``code_predictor.generate(inputs_embeds=[past_hidden, code0_embedding], …)``:
    returns an object whose ``sequences`` are the 15 residual codes, shape (batch, steps)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    hidden = self.small_to_mtp_projection(inputs_embeds)
    codes = []
    position = 0
    for step in range(max_new_tokens):
        length = hidden.shape[1]
        positions = torch.arange(position, position + length, device=hidden.device)
        out = self.model(inputs_embeds=hidden, past_key_values=cache, use_cache=True, cache_position=positions,
                         position_ids=positions.unsqueeze(0))
        position += length
        logits = self.lm_head[step](out.last_hidden_state[:, -1, :]).float()
        token = _sample(logits, do_sample, top_k, top_p, temperature)
        codes.append(token)
        if step + 1 < max_new_tokens:
            hidden = self.small_to_mtp_projection(self.model.get_input_embeddings()[step](token[:, None]))
    return _Sequences(torch.stack(codes, dim=1))


def _sample(logits: torch.Tensor, do_sample: bool, top_k: int, top_p: float, temperature: float) -> torch.Tensor:
    """transformers' order: temperature, top-k, top-p, softmax, one multinomial draw."""
    if not do_sample:
        return logits.argmax(dim=-1)
    if temperature and temperature != 1.0:
        logits = logits / temperature
    if top_k and top_k > 0:
        k = min(top_k, logits.shape[-1])
        threshold = torch.topk(logits, k, dim=-1).values[..., -1, None]
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, sorted_index = torch.sort(logits, descending=False, dim=-1)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove_sorted = cumulative <= (1 - top_p)
        remove_sorted[..., -1:] = False
        remove = remove_sorted.scatter(-1, sorted_index, remove_sorted)
        logits = logits.masked_fill(remove, float("-inf"))
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, num_samples=1).squeeze(1)
