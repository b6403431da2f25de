"""The talker's and the code predictor's generation steps in one native call each.

With int8 weights a 1.7B frame spent ~60 ms in Python and small torch ops around the
matrix products (17 ms in the talker's 28 layers, 41-45 ms in the code predictor's 15 x 5
layer passes; measured with the kernels stubbed out).  ``kernels/decoder_step.h`` runs a
whole step (every layer and the final norm, the KV cache write and the attention) in C++
on the same packed int8 weights, and releases the GIL while it runs.

It is used where every projection of every layer is one of qtts's int8 linears with the
native kernel, fused as ``layers.fuse_projections`` fuses them, the activations are fp32,
and the layers are the ones ``layers.decoder_layer`` runs (RMS norms with one epsilon,
SiLU, no sliding window, no biases).  Elsewhere (fp32, int4, torch's kernel, bf16
activations) the Python layers run as before.  The prefill (many positions, compute-bound)
always runs the Python layers.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)


def build(model: nn.Module, kernel: Any, activation_dtype: torch.dtype, resident_bytes: int = 0) -> Any | None:
    """A native ``DecoderStack`` over ``model.layers`` and ``model.norm`` (the talker's or the
    code predictor's inner model), or None when this model cannot run it (the reason is
    logged at debug level).  The leading layers whose weights fit in ``resident_bytes`` are
    read so that they may stay cached between steps; the others stream past the caches."""
    reason = _unsupported(model, kernel, activation_dtype)
    if reason:
        log.debug("native decoder step not used for %s: %s", type(model).__name__, reason)
        return None
    first = model.layers[0].self_attn
    layers = []
    for layer in model.layers:
        attention, mlp = layer.self_attn, layer.mlp
        tensors = [_norm_weight(layer.input_layernorm), _norm_weight(layer.post_attention_layernorm),
                   _norm_weight(attention.q_norm), _norm_weight(attention.k_norm)]
        for linear in (attention.__dict__["_qtts_qkv"], attention.o_proj, mlp.__dict__["_qtts_gate_up"], mlp.down_proj):
            tensors += [linear.weight_packed, linear.row_sums, linear.scale_fp32]
        layers.append(tensors)
    heads = first.q_proj.out_features // first.head_dim
    kv_heads = first.k_proj.out_features // first.head_dim
    return kernel.decoder_stack(layers, _norm_weight(model.norm), float(model.norm.variance_epsilon), heads,
                                kv_heads, first.head_dim, float(first.scaling), resident_layers(layers, resident_bytes))


def build_frame(predictor: nn.Module, stack: Any, kernel: Any) -> Any | None:
    """A native ``PredictorFrame`` (``kernels/predictor_frame.h``): a whole frame of the code
    predictor (``stack``, the ``build`` over its layers) with its input projection, heads,
    sampling and embeddings in one call; None where those are not all supported."""
    reason = "no native step" if stack is None else _frame_unsupported(predictor, kernel)
    if reason:
        log.debug("native code-predictor frame not used: %s", reason)
        return None
    projection = predictor.small_to_mtp_projection
    identity = isinstance(projection, nn.Identity)
    linear = [] if identity else [projection.weight_packed, projection.row_sums, projection.scale_fp32]
    bias = None if identity or projection.bias is None else projection.bias.detach().float()
    first = predictor.model.layers[0].self_attn
    return kernel.predictor_frame(stack, linear, bias,
                                  [[h.weight_packed, h.row_sums, h.scale_fp32] for h in predictor.lm_head],
                                  [e.weight.detach() for e in predictor.get_input_embeddings()],
                                  first.k_proj.out_features // first.head_dim, first.head_dim)


def _frame_unsupported(predictor: nn.Module, kernel: Any) -> str:
    from qtts.engine.weights.quant import Int8Linear

    def native_linear(module: nn.Module) -> bool:
        return isinstance(module, Int8Linear) and module.kernel is kernel

    projection = predictor.small_to_mtp_projection
    heads, embeddings = list(predictor.lm_head), list(predictor.get_input_embeddings())
    if not (isinstance(projection, nn.Identity) or native_linear(projection)):
        return "the input projection is not an int8 linear on the native kernel"
    if not all(native_linear(head) and head.bias is None for head in heads):
        return "a head is not an int8 linear on the native kernel"
    if len(heads) != len(embeddings) or not all(
            isinstance(e, nn.Embedding) and e.weight.dtype in (torch.float32, torch.bfloat16) for e in embeddings):
        return "embeddings"
    return ""


def resident_layers(layers: list[list[torch.Tensor]], budget: int) -> int:
    """How many leading layers' packed weights fit in ``budget`` bytes."""
    count, used = 0, 0
    for tensors in layers:
        used += sum(t.numel() * t.element_size() for t in tensors[4::3])  # the four packed weights
        if used > budget:
            break
        count += 1
    return count


def cache_budget() -> int:
    """Bytes of weights that may stay in the last-level cache from one step to the next: half
    of it (the rest is the other weights passing through, activations, other processes).
    0 where the size is unknown."""
    from pathlib import Path

    try:
        text = Path("/sys/devices/system/cpu/cpu0/cache/index3/size").read_text().strip()
    except OSError:
        return 0
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    try:
        size = int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
    except ValueError:
        return 0
    return size // 2


def _unsupported(model: nn.Module, kernel: Any, activation_dtype: torch.dtype) -> str:
    from qtts.engine.weights.quant import Int8Linear

    if kernel is None or not hasattr(kernel, "decoder_stack"):
        return "no native kernel"
    if activation_dtype != torch.float32:
        return f"activations are {activation_dtype}"
    norms = [model.norm]
    for layer in model.layers:
        attention, mlp = layer.self_attn, layer.mlp
        linears = [attention.__dict__.get("_qtts_qkv"), attention.o_proj, mlp.__dict__.get("_qtts_gate_up"),
                   mlp.down_proj]
        if not all(isinstance(m, Int8Linear) and m.kernel is kernel and m.bias is None for m in linears):
            return "a projection is not a fused int8 linear on the native kernel"
        if getattr(attention, "sliding_window", None) is not None:
            return "sliding-window attention"
        if type(mlp.act_fn).__name__ not in ("SiLU", "SiLUActivation"):
            return f"activation {type(mlp.act_fn).__name__}"
        if (attention.q_proj.out_features % attention.head_dim
                or attention.k_proj.out_features != attention.v_proj.out_features):
            return "head layout"
        norms += [layer.input_layernorm, layer.post_attention_layernorm, attention.q_norm, attention.k_norm]
    if any(not type(norm).__name__.endswith("RMSNorm") or not hasattr(norm, "variance_epsilon") for norm in norms):
        return "a norm is not an RMSNorm"
    if len({float(norm.variance_epsilon) for norm in norms}) != 1:
        return "norms with different epsilons"
    return ""


def _norm_weight(norm: nn.Module) -> torch.Tensor:
    return norm.weight.detach().float().contiguous()
