"""The speaker encoder in fp32 on CPUs without native bf16 (upstream.speaker_encoder_in_fp32),
on the tiny checkpoint's real qwen_tts encoder: the same embedding as the bf16 encoder gives, to
bf16 rounding, in the dtype upstream expects."""

import copy
import types

import pytest
import torch

from qtts.engine import quant, upstream


def _bf16_copy(encoder):
    """A bf16 copy of ``encoder`` with its class's own forward."""
    fresh = copy.deepcopy(encoder).to(torch.bfloat16)
    fresh.forward = types.MethodType(type(encoder).forward, fresh)
    return fresh


@pytest.mark.parametrize("native_bf16", [False, True])
def test_installed_only_without_native_bf16(tiny_engine, monkeypatch, native_bf16):
    monkeypatch.setattr(quant, "fast_bf16_gemm", lambda: native_bf16)
    model = types.SimpleNamespace(speaker_encoder=_bf16_copy(tiny_engine._tts.model.speaker_encoder))
    assert upstream.speaker_encoder_in_fp32(model) == (0 if native_bf16 else 1)
    expected = torch.bfloat16 if native_bf16 else torch.float32
    assert next(model.speaker_encoder.parameters()).dtype == expected
    assert upstream.speaker_encoder_in_fp32(types.SimpleNamespace(speaker_encoder=None)) == 0


def test_fp32_encoder_gives_the_bf16_embedding_in_bf16(tiny_engine, monkeypatch):
    monkeypatch.setattr(quant, "fast_bf16_gemm", lambda: False)
    reference = _bf16_copy(tiny_engine._tts.model.speaker_encoder)
    model = types.SimpleNamespace(speaker_encoder=_bf16_copy(reference))
    assert upstream.speaker_encoder_in_fp32(model) == 1
    mels = torch.randn(1, 120, 128, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    with torch.inference_mode():
        expected = reference(mels)
        got = model.speaker_encoder(mels)
    assert got.dtype == torch.bfloat16 and got.shape == expected.shape
    cosine = torch.nn.functional.cosine_similarity(got.float().flatten(), expected.float().flatten(), dim=0)
    assert float(cosine) > 0.99


def test_engine_reports_the_patch(tiny_engine):
    assert tiny_engine.patches.patches["speaker encoder in fp32"] == (0 if quant.fast_bf16_gemm() else 1)
