"""The speaker encoder and the text projection in fp32 on CPUs without native bf16
(upstream.fp32_where_bf16_is_emulated), on the tiny checkpoint's real qwen_tts modules: the
same outputs as in bf16, to bf16 rounding, in the dtype upstream expects."""

import copy
import types

import pytest
import torch

from qtts.engine import upstream
from qtts.engine.weights import quant


def _bf16_copy(module):
    """A bf16 copy of ``module`` with its class's own forward."""
    fresh = copy.deepcopy(module).to(torch.bfloat16)
    fresh.forward = types.MethodType(type(module).forward, fresh)
    return fresh


def _model(engine):
    """A stand-in holding bf16 copies of the two parts."""
    real = engine._tts.model
    return types.SimpleNamespace(speaker_encoder=_bf16_copy(real.speaker_encoder),
                                 talker=types.SimpleNamespace(text_projection=_bf16_copy(real.talker.text_projection)))


@pytest.mark.parametrize("native_bf16", [False, True])
def test_installed_only_without_native_bf16(tiny_engine, monkeypatch, native_bf16):
    monkeypatch.setattr(quant, "fast_bf16_gemm", lambda: native_bf16)
    model = _model(tiny_engine)
    counts = upstream.fp32_where_bf16_is_emulated(model)
    assert counts == {"speaker encoder in fp32": 0 if native_bf16 else 1,
                      "text projection in fp32": 0 if native_bf16 else 1}
    expected = torch.bfloat16 if native_bf16 else torch.float32
    assert next(model.speaker_encoder.parameters()).dtype == expected
    assert next(model.talker.text_projection.parameters()).dtype == expected
    none = upstream.fp32_where_bf16_is_emulated(types.SimpleNamespace(speaker_encoder=None))  # CustomVoice, VoiceDesign
    assert set(none.values()) == {0}


def test_fp32_parts_give_the_bf16_outputs_in_bf16(tiny_engine, monkeypatch):
    monkeypatch.setattr(quant, "fast_bf16_gemm", lambda: False)
    reference = _model(tiny_engine)
    model = _model(tiny_engine)
    assert set(upstream.fp32_where_bf16_is_emulated(model).values()) == {1}
    g = torch.Generator().manual_seed(0)
    mels = torch.randn(1, 120, 128, generator=g).to(torch.bfloat16)
    width = reference.talker.text_projection.linear_fc1.in_features
    text = torch.randn(1, 9, width, generator=g).to(torch.bfloat16)
    with torch.inference_mode():
        pairs = [(reference.speaker_encoder(mels), model.speaker_encoder(mels)),
                 (reference.talker.text_projection(text), model.talker.text_projection(text))]
    for expected, got in pairs:
        assert got.dtype == torch.bfloat16 and got.shape == expected.shape
        cosine = torch.nn.functional.cosine_similarity(got.float().flatten(), expected.float().flatten(), dim=0)
        assert float(cosine) > 0.99


def test_engine_reports_the_patches(tiny_engine):
    expected = 0 if quant.fast_bf16_gemm() else 1
    patches = tiny_engine.patches.patches
    assert patches["speaker encoder in fp32"] == patches["text projection in fp32"] == expected
