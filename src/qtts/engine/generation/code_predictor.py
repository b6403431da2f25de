"""A lean loop for the code predictor: the same submodules and sampling, less glue.

Upstream runs the code predictor (5 layers, 15 sequential steps per frame) through
transformers' ``generate()`` once per frame, and every step goes through the model's
``forward``: a fresh causal mask, rotary tables for the new position, a growing
``DynamicCache`` (one concatenation per layer per step).  With int8 weights everything but
the matrix products is ~20% of the predictor's time (34 of ~175 ms per frame on 1.7B,
measured with the linears stubbed out); this loop removes part of it (~5%).
``lean_code_predictor`` is a drop-in for
``code_predictor.generate`` that calls the same modules (``small_to_mtp_projection``, each
layer's norms, projections and MLP, ``lm_head[i]``, ``codec_embedding[i]``) and the same
attention call transformers makes (``scaled_dot_product_attention`` with grouped KV heads,
causal for the two-position first step), on rotary tables computed once and a KV cache
allocated once per frame.  Sampling follows transformers' order: temperature, top-k, top-p,
one multinomial draw; argmax when greedy.  The model code itself is untouched.  Where the
layers' weights are int8 on qtts's kernel, each step's five layers and final norm run in one
native call instead (``generation.native_stack``).

qtts's own loops call ``predict_frame``: where the projection, the heads and the layers are
all int8 on qtts's kernel, the whole frame (15 codes: projection, layers, head, sampling,
embedding, and the sum of the frame's embeddings) is one native call
(``kernels/predictor_frame.h``), which draws from the same distribution as ``_sample`` with
one uniform per code from the row's generator (not the same draw as ``torch.multinomial``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from qtts.engine.generation.layers import decoder_layer, signed_sin


@dataclass(frozen=True)
class Sampling:
    """One row's sampling settings (transformers' names without the prefix) and its random
    generator (None: torch's global one)."""

    do_sample: bool = True
    top_k: int = 50
    top_p: float = 1.0
    temperature: float = 1.0
    generator: torch.Generator | None = None

    def draw(self, logits: torch.Tensor) -> torch.Tensor:
        return _sample(logits, self.do_sample, self.top_k, self.top_p, self.temperature, self.generator)


@dataclass
class Frame:
    """A frame's residual codes from the code predictor."""

    codes: torch.Tensor  # (batch, steps)
    summed: torch.Tensor  # (batch, 1, talker width): code 0's and the new codes' embeddings summed
    logits: torch.Tensor | None = None  # (batch, steps, vocab) fp32, when asked for


@torch.inference_mode()
def predict_frame(predictor: nn.Module, inputs_embeds: torch.Tensor, rows: list[Sampling],
                  forced: torch.Tensor | None = None, keep_logits: bool = False) -> Frame:
    """The residual codes after ``inputs_embeds`` = [the talker's last hidden, code 0's
    embedding] (batch, 2, talker width), each row sampled by its ``rows`` entry, or taken
    from ``forced`` (batch, steps) (teacher forcing).  In one native call where the
    predictor has one (``generation.native_stack.build_frame``); else the lean loop below."""
    steps = len(predictor.lm_head)
    native = predictor.__dict__.get("_qtts_frame") if inputs_embeds.dtype == torch.float32 else None
    if native is not None:
        cos, sin = _rotary_tables(predictor.model, steps + 1, inputs_embeds)
        uniforms = torch.stack([torch.rand(steps, generator=row.generator) if row.do_sample else torch.zeros(steps)
                                for row in rows])
        logits = torch.empty((len(rows), steps, predictor.lm_head[0].out_features)) if keep_logits else torch.empty(0)
        codes, summed = native.run(inputs_embeds.contiguous(), cos, sin, [r.do_sample for r in rows],
                                   [int(r.top_k or 0) for r in rows], [float(1.0 if r.top_p is None else r.top_p)
                                                                       for r in rows],
                                   [float(r.temperature or 0.0) for r in rows], uniforms,
                                   torch.empty(0, dtype=torch.long) if forced is None else forced.contiguous(), logits)
        return Frame(codes, summed, logits if keep_logits else None)
    seen: list[torch.Tensor] = []

    def sampler(step: int, logits: torch.Tensor) -> torch.Tensor:
        if keep_logits:
            seen.append(logits)
        if forced is not None:
            return forced[:, step]
        return torch.cat([row.draw(logits[i:i + 1]) for i, row in enumerate(rows)])

    codes = lean_code_predictor(predictor, inputs_embeds, steps, sampler=sampler).sequences
    embeddings = predictor.get_input_embeddings()
    hiddens = [inputs_embeds[:, 1:2]] + [embeddings[i](codes[..., i:i + 1]).to(inputs_embeds.dtype)
                                         for i in range(steps)]
    return Frame(codes, torch.cat(hiddens, dim=1).sum(1, keepdim=True), torch.stack(seen,
                                                                                    dim=1) if keep_logits else None)


class _Sequences:
    def __init__(self, sequences: torch.Tensor) -> None:
        self.sequences = sequences


@torch.inference_mode()
def lean_code_predictor(self: nn.Module, inputs_embeds: torch.Tensor, max_new_tokens: int,
                        do_sample: bool = True, top_p: float = 1.0, top_k: int = 50, temperature: float = 1.0,
                        sampler: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
                        **_: Any) -> _Sequences:
    """Drop-in for ``code_predictor.generate(inputs_embeds=[past_hidden, code0_embedding], …)``:
    returns an object whose ``sequences`` are the residual codes, shape (batch, steps).
    ``sampler(step, fp32 logits)`` (qtts's own callers) replaces the sampling arguments."""
    if sampler is None:
        def sampler(_step: int, logits: torch.Tensor) -> torch.Tensor:
            return _sample(logits, do_sample, top_k, top_p, temperature)
    model = self.model
    hidden = self.small_to_mtp_projection(inputs_embeds)
    length = hidden.shape[1] + max_new_tokens - 1
    cos, signed_sin = _rotary_tables(model, length, hidden)
    first = model.layers[0].self_attn
    cache_shape = (len(model.layers), hidden.shape[0], model.config.num_key_value_heads, length, first.head_dim)
    keys = torch.empty(cache_shape, dtype=hidden.dtype)
    values = torch.empty(cache_shape, dtype=hidden.dtype)
    native = self.__dict__.get("_qtts_native") if hidden.dtype == torch.float32 else None
    if native is not None:  # engine.native_stack: each row's cache, as (layers, heads, length, dim)
        row_keys = [keys[:, row] for row in range(hidden.shape[0])]
        row_values = [values[:, row] for row in range(hidden.shape[0])]
        begins = [0] * hidden.shape[0]
    codes = []
    position = 0
    for step in range(max_new_tokens):
        span = hidden.shape[1]
        if native is not None:
            hidden = native.step(hidden, cos[:, position:position + span], signed_sin[:, position:position + span],
                                 row_keys, row_values, begins, [position] * hidden.shape[0])
            position += span
            last = hidden[:, -1, :]  # the final norm is part of the native step
        else:
            hidden = _layers(model, hidden, cos, signed_sin, keys, values, position)
            position += span
            last = model.norm(hidden[:, -1, :])
        token = sampler(step, self.lm_head[step](last).float())
        codes.append(token)
        if step + 1 < max_new_tokens:  # embeddings stay in the model's dtype; activations may be fp32
            embedded = model.get_input_embeddings()[step](token[:, None]).to(inputs_embeds.dtype)
            hidden = self.small_to_mtp_projection(embedded)
    return _Sequences(torch.stack(codes, dim=1))


def _layers(model: nn.Module, hidden: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor, keys: torch.Tensor,
            values: torch.Tensor, position: int) -> torch.Tensor:
    """The predictor's layers on the new positions ``position..`` (Python, op by op)."""
    span = hidden.shape[1]
    step_cos = cos[:, position:position + span].unsqueeze(1)
    step_sin = signed_sin[:, position:position + span].unsqueeze(1)
    for index, layer in enumerate(model.layers):
        def store(key: torch.Tensor, value: torch.Tensor, index: int = index) -> tuple[torch.Tensor, torch.Tensor]:
            end = position + key.shape[2]
            keys[index][:, :, position:end] = key
            values[index][:, :, position:end] = value
            return keys[index][:, :, :end], values[index][:, :, :end]

        hidden = decoder_layer(layer, hidden, step_cos, step_sin, store, None)
    return hidden


def _rotary_tables(model: nn.Module, length: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and [-sin, sin] (halves) for positions 0..length-1, from the model's own rotary
    module (cached)."""
    tables = model.__dict__.setdefault("_qtts_rotary_tables", {})
    key = (length, like.dtype)
    if key not in tables:
        cos, sin = model.rotary_emb(like, torch.arange(length)[None])
        tables[key] = cos, signed_sin(sin)
    return tables[key]


def _sample(logits: torch.Tensor, do_sample: bool, top_k: int, top_p: float, temperature: float,
            generator: torch.Generator | None = None) -> torch.Tensor:
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
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)
