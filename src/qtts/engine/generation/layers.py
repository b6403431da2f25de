"""One decoder layer of qwen_tts's transformers (talker and code predictor), as both lean
loops run it: the layer's own modules in upstream's order, its attention on a caller's
preallocated KV cache, and the projections that share an input fused into one int8 call
where the fast path fused them (``fuse_projections``; exact, see ``weights.quant.fuse``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from qtts.engine.weights.quant import fuse

Store = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# (query, new key, new value) -> attended; for rows whose caches have different lengths
Attend = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def fuse_projections(layers: nn.ModuleList) -> int:
    """Fuse q/k/v and gate/up of each layer where all are qtts int8 linears; return how many
    groups were fused.  The fused modules are kept beside (not inside) the upstream modules,
    so that upstream's own forward still finds its q_proj, k_proj, … unchanged."""
    count = 0
    for layer in layers:
        attention, mlp = layer.self_attn, layer.mlp
        for owner, names, key in ((attention, ("q_proj", "k_proj", "v_proj"), "_qtts_qkv"),
                                  (mlp, ("gate_proj", "up_proj"), "_qtts_gate_up")):
            fused = fuse([getattr(owner, name) for name in names])
            if fused is not None:
                owner.__dict__[key] = fused
                count += 1
    return count


def decoder_layer(layer: nn.Module, hidden: torch.Tensor, cos: torch.Tensor, sin_signed: torch.Tensor,
                  store: Store | None, mask: torch.Tensor | None, attend: Attend | None = None) -> torch.Tensor:
    """``Qwen3TTS*DecoderLayer.forward``: ``cos`` and ``sin_signed`` (``signed_sin``) are the
    rotary tables of the new positions; ``store`` puts the new keys and values in the cache
    and returns all of them.  Query and key heads go through their norms and the rotary
    embedding together (fewer small ops; the same values to the bit as upstream's): upstream's
    ``x * cos + rotate_half(x) * sin`` is computed as ``x * cos + roll(x, half) * [-sin, sin]``,
    the same products.  ``attend`` (instead of ``store``) attends row by row, each row on its
    own cache (``generation.batcher``)."""
    attention = layer.self_attn
    batch, span, _ = hidden.shape
    residual = hidden
    normed = layer.input_layernorm(hidden)
    query, key, value = _qkv(attention, normed)
    query_heads = query.shape[-1] // attention.head_dim
    heads = torch.cat((query, key), dim=-1).view(batch, span, -1, attention.head_dim)
    heads = _head_norms(attention, heads, query_heads).transpose(1, 2)
    heads = heads * cos + heads.roll(heads.shape[-1] // 2, dims=-1) * sin_signed
    query, key = heads[:, :query_heads], heads[:, query_heads:]
    value = value.reshape(batch, span, -1, attention.head_dim).transpose(1, 2)
    if attend is not None:
        attended = attend(query, key, value)
    else:
        keys, values = store(key, value)
        attended = attend_cached(attention, query, keys, values, mask)
    hidden = residual + attention.o_proj(attended.transpose(1, 2).reshape(batch, span, -1))
    return hidden + _mlp(layer.mlp, layer.post_attention_layernorm(hidden))


def attend_cached(attention: nn.Module, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                  mask: torch.Tensor | None) -> torch.Tensor:
    """transformers' sdpa call: no mask and causal when several unpadded positions are new,
    no mask for one unpadded position, the padding mask otherwise."""
    return torch.nn.functional.scaled_dot_product_attention(
        query, keys, values, attn_mask=mask, scale=attention.scaling, is_causal=mask is None and query.shape[2] > 1,
        enable_gqa=True)


def _head_norms(attention: nn.Module, heads: torch.Tensor, query_heads: int) -> torch.Tensor:
    """``q_norm`` on the first ``query_heads`` heads and ``k_norm`` on the rest, in one pass:
    upstream's RMSNorm arithmetic, element for element, with the two weights side by side."""
    q_norm, k_norm = attention.q_norm, attention.k_norm
    if q_norm.variance_epsilon != k_norm.variance_epsilon:
        return torch.cat((q_norm(heads[:, :, :query_heads]), k_norm(heads[:, :, query_heads:])), dim=2)
    cache_key = ("_qtts_head_norm", heads.shape[2], query_heads)
    weight = attention.__dict__.get(cache_key)
    if weight is None:
        key_heads = heads.shape[2] - query_heads
        weight = torch.cat((q_norm.weight.detach().expand(query_heads, -1), k_norm.weight.detach().expand(key_heads,
                                                                                                          -1)))
        attention.__dict__[cache_key] = weight
    input_dtype = heads.dtype
    states = heads.to(torch.float32)
    variance = states.pow(2).mean(-1, keepdim=True)
    states = states * torch.rsqrt(variance + q_norm.variance_epsilon)
    return weight * states.to(input_dtype)


def signed_sin(sin: torch.Tensor) -> torch.Tensor:
    """[-sin, sin] by halves of the head dimension, for ``rotate_pair``."""
    half = sin.shape[-1] // 2
    return torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)


def _qkv(attention: nn.Module, normed: torch.Tensor) -> tuple[torch.Tensor, ...]:
    fused = attention.__dict__.get("_qtts_qkv")
    if fused is None:
        return attention.q_proj(normed), attention.k_proj(normed), attention.v_proj(normed)
    sizes = [attention.q_proj.out_features, attention.k_proj.out_features, attention.v_proj.out_features]
    return fused(normed).split(sizes, dim=-1)


def _mlp(mlp: nn.Module, x: torch.Tensor) -> torch.Tensor:
    fused = mlp.__dict__.get("_qtts_gate_up")
    if fused is None:
        return mlp(x)
    gate, up = fused(x).split(mlp.gate_proj.out_features, dim=-1)
    return mlp.down_proj(mlp.act_fn(gate) * up)
