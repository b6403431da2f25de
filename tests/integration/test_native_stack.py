"""The native decoder step (engine/native_stack.py, kernels/decoder_step.h) against the Python
layers it replaces (layers.decoder_layer), on real qwen_tts modules: the real head size
(128) with grouped KV heads, rows with different cache lengths and left padding, two new
positions at once (the code predictor's first step), and the tiny checkpoint's talker and
code predictor end to end."""

import copy

import pytest
import torch

from qtts.engine import kernels
from qtts.engine.generation import native_stack
from qtts.engine.generation.layers import attend_cached, decoder_layer, fuse_projections
from qtts.engine.weights.quant import Quantizer

pytestmark = pytest.mark.skipif(kernels.load() is None, reason="qtts's native kernel cannot be built here")


class Spy:
    """Counts the calls of a native stack's step."""

    def __init__(self, native):
        self.native, self.calls = native, 0

    def step(self, *args):
        self.calls += 1
        return self.native.step(*args)


def _python_step(model, hidden, cos, sin, keys, values, begins, starts):
    """Each row alone through the Python layers, attending to its cache from ``begins[b]``."""
    out = []
    for b in range(hidden.shape[0]):
        span, start = hidden.shape[1], starts[b]
        row = hidden[b:b + 1]
        row_cos, row_sin = cos[min(b, cos.shape[0] - 1)][None, None], sin[min(b, sin.shape[0] - 1)][None, None]
        for index, layer in enumerate(model.layers):
            attention = layer.self_attn

            def attend(query, key, value, index=index, b=b, start=start, span=span, attention=attention):
                keys[b][index, :, start:start + span] = key[0]
                values[b][index, :, start:start + span] = value[0]
                rows = []
                for s in range(span):  # new position s sees begin .. start + s
                    end = start + s + 1
                    rows.append(attend_cached(attention, query[:, :, s:s + 1], keys[b][index, :, begins[b]:end][None],
                                              values[b][index, :, begins[b]:end][None], None))
                return torch.cat(rows, dim=2)

            row = decoder_layer(layer, row, row_cos, row_sin, None, None, attend)
        out.append(model.norm(row))
    return torch.cat(out)


@pytest.fixture(scope="module")
def real_heads_model(tiny_engine):
    """Two layers of the real code-predictor class with the real head layout (head size 128,
    grouped KV heads), random weights, quantized and fused as the fast path does it."""
    predictor = tiny_engine._tts.model.talker.code_predictor
    config = copy.deepcopy(predictor.model.config)
    config.hidden_size, config.intermediate_size, config.num_hidden_layers = 256, 384, 2
    config.num_attention_heads, config.num_key_value_heads, config.head_dim = 4, 2, 128
    config.layer_types = ["full_attention"] * 2
    torch.manual_seed(0)
    model = type(predictor.model)(config, 64).eval()
    for layer in model.layers:  # norms away from 1, so that a wrong weight shows
        for norm in (layer.input_layernorm, layer.post_attention_layernorm, layer.self_attn.q_norm,
                     layer.self_attn.k_norm):
            norm.weight.data.uniform_(0.5, 1.5)
    kernel = kernels.load()
    Quantizer("int8", kernel=kernel).module(model)
    assert fuse_projections(model.layers) == 4
    layer_bytes = [sum(m.weight_packed.numel() for m in (layer.self_attn.__dict__["_qtts_qkv"], layer.self_attn.o_proj,
                                                         layer.mlp.__dict__["_qtts_gate_up"], layer.mlp.down_proj))
                   for layer in model.layers]
    assert layer_bytes[0] < 800_000 < sum(layer_bytes)
    native = native_stack.build(model, kernel, torch.float32,
                                resident_bytes=800_000)  # layer 0 cached, layer 1 streamed
    assert native is not None
    return model, native


@pytest.mark.parametrize("span", [1, 2])
def test_native_step_matches_the_python_layers(real_heads_model, span):
    model, native = real_heads_model
    torch.manual_seed(1)
    batch, capacity, layers = 3, 40, len(model.layers)
    starts, begins = [5, 17, 30], [0, 3, 10]  # different lengths; rows 1 and 2 left-padded
    hidden = torch.randn(batch, span, 256)
    positions = torch.tensor([[start - begin + s for s in range(span)] for start, begin in zip(starts, begins)])
    cos, sin = model.rotary_emb(hidden, positions)
    from qtts.engine.generation.layers import signed_sin

    sin = signed_sin(sin)
    shape = (layers, 2, capacity, 128)
    keys = [torch.randn(shape) for _ in range(batch)]
    values = [torch.randn(shape) for _ in range(batch)]
    ref_keys, ref_values = [k.clone() for k in keys], [v.clone() for v in values]

    with torch.inference_mode():
        got = native.step(hidden, cos.contiguous(), sin.contiguous(), keys, values, begins, starts)
        expected = _python_step(model, hidden, cos, sin, ref_keys, ref_values, begins, starts)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4), (got - expected).abs().max()
    for b in range(batch):  # the cache got the same keys and values, and nothing else changed
        # (layer 1's inputs differ by float rounding, which the int8 kernel's 16-bit
        # activations can round one step apart: ~3e-5 here)
        assert torch.allclose(keys[b], ref_keys[b], rtol=1e-4, atol=1e-4)
        assert torch.allclose(values[b], ref_values[b], rtol=1e-4, atol=1e-4)
        assert torch.equal(keys[b][0], ref_keys[b][0]) or torch.allclose(keys[b][0], ref_keys[b][0], atol=1e-6)
    # The test can tell: a row attending from the wrong position differs.
    with torch.inference_mode():
        shifted = native.step(hidden, cos.contiguous(), sin.contiguous(), [k.clone() for k in ref_keys],
                              [v.clone() for v in ref_values], [0, 0, 0], starts)
    assert not torch.allclose(shifted[1:], expected[1:], rtol=1e-3, atol=1e-3)


def test_native_step_refuses_a_cache_too_short(real_heads_model):
    model, native = real_heads_model
    hidden = torch.randn(1, 1, 256)
    cos, sin = model.rotary_emb(hidden, torch.tensor([[4]]))
    keys = [torch.zeros(len(model.layers), 2, 4, 128)]
    with pytest.raises(RuntimeError, match="outside the cache"):
        native.step(hidden, cos.contiguous(), sin.contiguous(), keys, [k.clone() for k in keys], [0], [4])


def test_tiny_checkpoint_runs_both_loops_natively_and_close_to_python(tiny_engine):
    """The tiny checkpoint's int8 talker and code predictor take the native step, and a frame's
    logits stay within float rounding of the Python layers' (teacher-forced: the same tokens)."""
    from qtts import audio as audio_mod
    from qtts.doctor import smoke_reference
    from qtts.engine.upstream import calls as generation

    assert tiny_engine.patches.patches["native decoder steps"] == 2
    loop = tiny_engine.talker_loop
    predictor = tiny_engine._tts.model.talker.code_predictor
    natives = loop.native, predictor.__dict__["_qtts_native"]
    frame = predictor.__dict__.pop("_qtts_frame")  # this test is about the steps (the frame: test_predictor_frame.py)
    reference = audio_mod.prepare_reference(smoke_reference(3.0), 30)
    prompt = tiny_engine.create_prompt(reference, "Hello there, this is a test.", False)
    runs = {}
    for name, (talker_native, predictor_native) in (("native", (Spy(natives[0]), Spy(natives[1]))),
                                                    ("python", (None, None))):
        loop.native, predictor.__dict__["_qtts_native"] = talker_native, predictor_native
        seen = []
        original = loop.head

        def head(hidden, seen=seen, original=original):
            logits, past = original(hidden)
            seen.append(logits)
            return logits, past

        loop.head = head
        try:
            codes = generation.generate(tiny_engine._tts, ["Hello world, again."], "English", prompt,
                                        max_new_tokens=12, do_sample=False, subtalker_dosample=False)[0]
        finally:
            del loop.head
            loop.native, predictor.__dict__["_qtts_native"] = natives
            predictor.__dict__["_qtts_frame"] = frame
        runs[name] = codes, seen
        if talker_native is not None:
            assert talker_native.calls >= 5 and predictor_native.calls >= 5 * 15
    (native_codes, native_logits), (python_codes, python_logits) = runs["native"], runs["python"]
    assert native_logits and len(native_logits) == len(python_logits)
    first = torch.nn.functional.cosine_similarity(native_logits[0], python_logits[0], dim=-1)
    assert float(first.min()) > 0.9999
    assert torch.equal(native_codes[0], python_codes[0])


def test_resident_layers_fill_the_budget_from_the_first():
    def layer(megabytes):  # 16 tensors: 4 norms, then (packed, sums, scale) x 4, megabytes in all
        packed = torch.empty(megabytes * 250_000, dtype=torch.int8)
        return [torch.empty(1)] * 4 + [packed, torch.empty(1), torch.empty(1)] * 4

    layers = [layer(16), layer(16), layer(16)]  # 16 MB each
    assert native_stack.resident_layers(layers, 0) == 0
    assert native_stack.resident_layers(layers, 16_000_000) == 1
    assert native_stack.resident_layers(layers, 40_000_000) == 2
    assert native_stack.resident_layers(layers, 10**9) == 3
