"""The decoder's convolutions on AMX bf16x3 tiles (kernels/conv_amx.h), where the CPU has
them: against fp32 to ~110 dB, each output row on its own (a sequence in groups gives the
bits of one pass), through upstream's own convolution modules as the decoder installs them.
The tiny checkpoint's decoder has too few channels for the tiles, so real qwen_tts modules
with the published decoder's channel counts are built here."""

import types

import pytest
import torch

from qtts.engine import kernels

# SNR of an fp32 convolution against float64 is ~135 dB; bf16 alone would give ~50.
MIN_SNR_DB = 100


@pytest.fixture(scope="module")
def native():
    module = kernels.load()
    if module is None or not module.conv_amx_available():
        pytest.skip(f"no AMX convolution here ({kernels.status()})")
    return module


def _snr(reference: torch.Tensor, other: torch.Tensor) -> float:
    reference = reference.double()
    return float(10 * torch.log10(reference.pow(2).sum() / (other.double() - reference).pow(2).sum()))


@pytest.mark.parametrize("cin, cout, taps, dilation, rows", [(192, 192, 7, 1, 300), (96, 96, 7, 9, 200),
                                                             (64, 200, 1, 1, 37), (1024, 1536, 7, 1, 20),
                                                             (32, 16, 2, 1, 1)])
def test_the_kernel_is_fp32_to_110_db_and_each_row_its_own(native, cin, cout, taps, dilation, rows):
    torch.manual_seed(cin + cout)
    weight = torch.randn(cout, cin, taps) / (cin * taps) ** 0.5
    bias = torch.randn(cout)
    x = torch.randn(2, rows + (taps - 1) * dilation, cin)
    packed = native.conv_amx_pack(weight)
    got = native.conv_amx_run(x, None, packed, bias, cout, taps, dilation)
    reference = torch.nn.functional.conv1d(x.double().transpose(1, 2), weight.double(), bias.double(),
                                           dilation=dilation).transpose(1, 2)
    assert got.shape == reference.shape
    assert _snr(reference, got) > MIN_SNR_DB
    half = rows // 2
    if half:
        later = native.conv_amx_run(x[:, half:].contiguous(), None, packed, bias, cout, taps, dilation)
        assert torch.equal(later, got[:, half:])  # the same bits, whatever came before
    unbiased = native.conv_amx_run(x, None, packed, None, cout, taps, dilation)
    assert torch.allclose(unbiased + bias, got, atol=1e-5)
    split = min(3, x.shape[1] - 1)  # the left context given apart: the same bits as joined
    apart = native.conv_amx_run(x[:, split:].contiguous(), x[:, :split].contiguous(), packed, bias, cout, taps,
                                dilation)
    assert torch.equal(apart, got)


def test_nan_propagates_and_a_bad_shape_is_refused(native):
    weight = torch.randn(64, 64, 3)
    packed = native.conv_amx_pack(weight)
    x = torch.randn(1, 20, 64)
    x[0, 5, 3] = float("nan")
    out = native.conv_amx_run(x, None, packed, None, 64, 3, 1)
    assert out[0, 3:6].isnan().all() and not out[0, 6:].isnan().any() and not out[0, :3].isnan().any()
    with pytest.raises(RuntimeError):
        native.conv_amx_pack(torch.randn(64, 48, 3))  # input channels not a multiple of 32
    with pytest.raises(RuntimeError):
        native.conv_amx_run(torch.randn(1, 2, 64), None, packed, None, 64, 3, 1)  # shorter than the kernel


def _install(module, forward):
    module.forward = types.MethodType(forward, module)
    return module


def test_upstream_modules_on_tiles_match_fp32_and_stream_exactly(native):
    """A causal convolution (kernel 7, dilation 3) and a transposed one (stride 3, kernel 6)
    of qwen_tts's decoder, as ``upstream.speed_up_decoder`` installs them: on tiles, against
    upstream's fp32 forward, and fed in groups with their state carried: the bits of one pass."""
    from qtts.engine.upstream import import_qwen_tts

    import_qwen_tts()  # through the door (it stubs what the 12 Hz models do not need)
    from qwen_tts.core.tokenizer_12hz import modeling_qwen3_tts_tokenizer_v2 as codec

    from qtts.engine.codec import stream
    from qtts.engine.codec.decoder import prepare_causal_conv, prepare_trans_conv

    torch.manual_seed(0)
    causal = codec.Qwen3TTSTokenizerV2CausalConvNet(256, 128, kernel_size=7, dilation=3).eval()
    transposed = codec.Qwen3TTSTokenizerV2CausalTransConvNet(128, 64, kernel_size=6, stride=3).eval()
    x = torch.randn(1, 256, 90)
    with torch.inference_mode():
        expected = transposed(causal(x))
        prepare_causal_conv(causal)
        prepare_trans_conv(transposed)
        assert causal.qtts_amx is not None and transposed.qtts_amx is not None and causal.qtts_time_major
        _install(causal, stream.causal_conv_forward)
        _install(transposed, stream.trans_conv_forward)
        whole = transposed(causal(x))
        assert _snr(expected, whole) > MIN_SNR_DB
        state = stream.DecoderState(cache=None)
        token = stream._ACTIVE.set(state)
        try:
            pieces = [transposed(causal(x[..., start:start + size])) for start, size in ((0, 1), (1, 16), (17, 73))]
        finally:
            stream._ACTIVE.reset(token)
    assert torch.equal(torch.cat(pieces, dim=-1), whole)
