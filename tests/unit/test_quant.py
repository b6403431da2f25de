"""The low-bit linears against the float product they replace."""

import pytest
import torch
from torch import nn

from qtts.engine.generation.code_predictor import _sample
from qtts.engine.weights.quant import MANY_ROWS, Int4Linear, Int8Linear, Quantizer, fast_bf16_gemm, many_rows


@pytest.mark.parametrize("kind, min_cosine", [(Int8Linear, 0.999), (Int4Linear, 0.99)])
@pytest.mark.parametrize("rows", [1, 5])
def test_low_bit_linear_matches_float(kind, min_cosine, rows):
    torch.manual_seed(0)
    linear = nn.Linear(512, 384, bias=True)
    x = torch.randn(2, rows, 512)
    quantized = kind(linear)
    out = quantized(x)
    assert out.shape == (2, rows, 384) and out.dtype == x.dtype
    cosine = torch.nn.functional.cosine_similarity(out.flatten(), linear(x).flatten(), dim=0)
    assert cosine > min_cosine


@pytest.mark.skipif(not fast_bf16_gemm(), reason="the prefill GEMM path is only taken on CPUs with native bf16")
def test_int8_prefill_gemm_agrees_with_the_int8_kernel_row_by_row():
    torch.manual_seed(0)
    quantized = Int8Linear(nn.Linear(512, 384, bias=True))
    x = torch.randn(1, MANY_ROWS + 8, 512)
    many = quantized(x)  # one bf16 GEMM over all rows
    one_by_one = torch.cat([quantized(x[:, i:i + 1]) for i in range(x.shape[1])], dim=1)  # the int8 kernel
    relative = (many - one_by_one).norm() / one_by_one.norm()
    assert relative < 0.01  # bf16 rounding of the output, nothing more
    assert not torch.equal(many, one_by_one)  # the two paths really are different kernels


def test_quantizer_replaces_only_eligible_layers():
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Sequential(nn.Linear(256, 128), nn.Linear(32, 8)))
    assert Quantizer("int4").module(model) == 2
    assert isinstance(model[0], Int4Linear) and isinstance(model[2][0], Int4Linear)
    assert isinstance(model[2][1], nn.Linear)  # too small to pay off (and not a multiple of the group)


def test_greedy_sampling_is_argmax_and_top_k_one_is_too():
    logits = torch.tensor([[0.1, 3.0, 0.2], [2.0, 0.0, 1.0]])
    assert _sample(logits, False, 50, 1.0, 0.9).tolist() == [1, 0]
    assert _sample(logits, True, 1, 1.0, 0.9).tolist() == [1, 0]


def test_top_p_keeps_the_smallest_set_over_p():
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    draws = {int(_sample(logits, True, 0, 0.7, 1.0)) for _ in range(200)}
    assert draws == {0, 1}


def test_the_many_row_limit_follows_the_cpu(monkeypatch):
    """Without native bf16 every row stays on qtts's exact kernel; with it, a bf16 GEMM takes
    over from 24 rows, or from 160 where the kernel has AMX tiles."""
    import qtts.engine.weights.quant as quant

    class Kernel:
        def __init__(self, variant):
            self._variant = variant

        def variant(self):
            return self._variant

    try:
        monkeypatch.setattr(quant, "fast_bf16_gemm", lambda: False)
        many_rows.cache_clear()
        assert many_rows(Kernel("avx2")) == quant.ALL_ROWS
        monkeypatch.setattr(quant, "fast_bf16_gemm", lambda: True)
        many_rows.cache_clear()
        assert many_rows(Kernel("avx512vnni")) == MANY_ROWS
        assert many_rows(Kernel("avx512vnni-amx")) == quant.MANY_ROWS_AMX
    finally:
        many_rows.cache_clear()
