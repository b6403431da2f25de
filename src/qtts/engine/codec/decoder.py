"""A faster speech-tokenizer decoder: a bit-identical activation, and transposed
convolutions run as ordinary ones.

Profiled on this project's 2-core machine, decoding 85 frames spent ~60% of its time in
convolutions and ~35% in elementwise passes, most of them SnakeBeta
(``x + 1/beta * sin(alpha * x)^2``), which upstream writes as five full-size temporaries.
At the last upsampling stage one temporary is 96 channels x 24000 samples/s: each pass
goes through main memory.  ``lean_snake_forward`` does the same operations, in the same
order, in place on slices short enough to stay in cache, so the result is identical to the
bit and the decoder takes ~25% less time and fewer large temporaries.  ``upstream.install``
installs it on each SnakeBeta instance.

Transposed convolutions: torch sends ``ConvTranspose1d`` to a slow reference path on this
CPU (``slow_conv_transpose2d``: 151 ms for the first one on a 1-frame input, 30 GFLOP/s on
long ones).  A transposed convolution whose kernel is one or two strides is an ordinary
convolution with kernel 1 or 2 and ``stride`` times the output channels, whose output is
interleaved: ``prepare_trans_conv`` rebuilds its weights that way (oneDNN's fast path; the
same sums, in another order).  The last two decoder blocks run time-major (channels last),
where oneDNN is fastest with few channels (``TIME_MAJOR_CHANNELS``); the forwards that use
these layouts are in ``codec.stream``.

Where the CPU has AMX, every convolution with input channels a multiple of 32 and at least
64 output channels runs time-major on qtts's AMX kernel instead (``prepare_amx``;
``kernels/conv_amx.h``): bf16 tiles at near-fp32 accuracy (~110 dB against float64, fp32
itself ~135), each output row computed from its own inputs, so decoding group by group stays
exact.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

SLICE_SAMPLES = 4096
# Convolutions with this many input channels or fewer (the last two decoder blocks, at 8 and
# 24 kHz) run time-major (channels last): oneDNN runs them without reordering the input,
# measured on the 2-core EPYC: 96 channels, kernel 7, 48000 samples 69 -> 43 ms, kernel 1
# 22 -> 12 ms; with 384 or 768 channels channels-first was 5-15% faster.
TIME_MAJOR_CHANNELS = 192
# The AMX tiles compute 64 output channels at a time: the waveform's last convolution (96 -> 1,
# kernel 7, 30,720 samples) took 7.8 ms on them against 2.7 ms in fp32 (96 -> 16: 4.1 / 2.8).
AMX_MIN_OUT_CHANNELS = 64


def lean_snake_forward(self: Any, hidden_states: Any) -> Any:
    """Upstream ``SnakeBeta.forward``: ``x + (1 / (exp(beta) + eps)) * sin(x * exp(alpha)) ** 2``."""
    import torch

    alpha = torch.exp(self.alpha).unsqueeze(0).unsqueeze(-1)
    inverse_beta = (1.0 / (torch.exp(self.beta).unsqueeze(0).unsqueeze(-1) + self.no_div_by_zero))
    out = torch.empty_like(hidden_states)
    length = hidden_states.shape[-1]
    for start in range(0, length, SLICE_SAMPLES):
        x = hidden_states[..., start:start + SLICE_SAMPLES]
        wave = torch.mul(x, alpha)
        wave.sin_()
        wave.mul_(wave)
        wave.mul_(inverse_beta)
        torch.add(x, wave, out=out[..., start:start + SLICE_SAMPLES])
    return out


def native_snake_forward(self: Any, hidden_states: Any) -> Any:
    """Upstream ``SnakeBeta.forward`` in one native pass (``kernels/snake.h``: each element read
    and written once; sin^2 from its own polynomial, within 2e-7 of torch's sin).  Installed
    where qtts's native module is built; other dtypes take ``lean_snake_forward``."""
    import torch

    from qtts.engine import kernels

    module = kernels.load()
    if hidden_states.dtype != torch.float32 or hidden_states.dim() != 3 or module is None:
        return lean_snake_forward(self, hidden_states)
    alpha = torch.exp(self.alpha.detach()).float().contiguous()
    inverse_beta = (1.0 / (torch.exp(self.beta.detach()) + self.no_div_by_zero)).float().contiguous()
    return module.snake(hidden_states, alpha, inverse_beta)


def prepare_causal_conv(module: Any) -> None:
    """Choose a causal convolution's layout (``qtts_time_major``) once, at install, and
    prepack its weights: for AMX tiles (``prepare_amx``, time-major), else a channels-first
    one's for oneDNN (``prepack``)."""
    module.qtts_time_major = module.conv.in_channels <= TIME_MAJOR_CHANNELS
    prepare_amx(module)
    prepack(module)


def prepare_amx(module: Any) -> None:
    """Where qtts's kernel has the AMX bf16x3 convolution (``kernels/conv_amx.h``: fp32 to
    ~110 dB, each output row on its own inputs in a fixed order), pack this module's
    convolution for it (``module.qtts_amx``) and run it time-major.  Measured on the 2-core
    Xeon, 2 x 10,246 samples, 192 -> 192 channels, kernel 7: 33 ms in fp32, 15.5 ms here."""
    from qtts.engine import kernels
    from qtts.engine.weights.quant import release_pages

    module.qtts_amx = None
    conv = module.conv
    if not amx_applies(conv.in_channels, conv.out_channels, conv.weight.dtype):
        return
    if conv.groups != 1 or conv.stride[0] != 1 or conv.padding[0] != 0:
        return
    module.qtts_amx = kernels.load().conv_amx_pack(conv.weight.detach().contiguous())
    module.qtts_amx_bias = None if conv.bias is None else conv.bias.detach().float().contiguous()
    module.qtts_time_major = True
    release_pages(conv.weight)  # as prepack: read again only by the plain convolution (FLOP counting)


def amx_applies(in_channels: int, out_channels: int, dtype: Any) -> bool:
    """Whether an ordinary convolution of these channels and weights runs on AMX tiles here."""
    import torch

    from qtts.engine import kernels

    native = kernels.load()
    if native is None or not native.conv_amx_available():
        return False
    return dtype == torch.float32 and in_channels % 32 == 0 and out_channels >= AMX_MIN_OUT_CHANNELS


def convolve_time_major(module: Any, steps: Any, head: Any = None) -> Any:
    """``module.conv`` over ``head`` (the left context, or None) and then ``steps``, each
    (batch, time, channels in) time-major: (batch, channels out, time), laid out time-major.
    On AMX tiles where ``prepare_amx`` packed it (which reads the two without joining them)."""
    import torch
    import torch.nn.functional as F

    conv = module.conv
    if getattr(module, "qtts_amx", None) is not None and not _PLAIN.get():
        from qtts.engine import kernels

        out = kernels.load().conv_amx_run(steps, head, module.qtts_amx, module.qtts_amx_bias, conv.out_channels,
                                          conv.kernel_size[0], conv.dilation[0])
        return out.transpose(1, 2)
    padded = steps if head is None else torch.cat([head, steps], dim=1)
    out = F.conv2d(padded.transpose(1, 2).unsqueeze(2), conv.weight.unsqueeze(2), conv.bias,
                   dilation=(1, conv.dilation[0]), groups=conv.groups)
    return out.squeeze(2)


def prepack(module: Any) -> None:
    """oneDNN's copy of a channels-first convolution's weights, in its own blocked layout,
    made once (``module.qtts_packed``; ``convolve`` runs it).  ``F.conv1d`` reorders the
    weights on every call: a 1536 -> 768, kernel-7 convolution on an 8-sample input took 7.7
    ms, 2.4 ms prepacked (measured on the 2-core EPYC; 47.5 -> 43.8 ms on 400 samples), with
    the same bits.  ``torch.ops.mkldnn_prepacked`` is torch-internal: where it is missing or
    refuses the layout, the plain convolution stays.  The plain weights' mapped pages are
    released: they are read again only if something runs the plain convolution (FLOP
    counting in ``qtts bench``)."""
    import torch

    from qtts.engine.weights.quant import release_pages

    module.qtts_packed = None
    if module.qtts_time_major or not _prepacked_ops():
        return
    conv = module.conv
    weight = conv.weight.detach().contiguous()
    bias = None if conv.bias is None else conv.bias.detach().contiguous()
    try:
        module.qtts_packed = torch.ops.mkldnn_prepacked.conv2d_prepack(
            weight.unsqueeze(2), bias, [1, 1], [0, 0], [1, conv.dilation[0]], conv.groups,
            [1, conv.in_channels, 1, 64], "none")
    except RuntimeError:  # a layout this oneDNN build does not take: the plain convolution
        return
    release_pages(conv.weight)


def convolve(module: Any, hidden: Any) -> Any:
    """``module.conv(hidden)`` for (batch, channels, time) input, prepacked where it could be."""
    import torch

    packed = getattr(module, "qtts_packed", None)
    if packed is None or _PLAIN.get():
        return module.conv(hidden)
    return torch.ops.mkldnn_prepacked.conv2d_run(hidden.unsqueeze(2), packed).squeeze(2)


_PLAIN: contextvars.ContextVar[bool] = contextvars.ContextVar("qtts_plain_convolutions", default=False)


@contextlib.contextmanager
def plain_convolutions() -> Iterator[None]:
    """Within this context the plain convolutions run (torch's FLOP counter sees those only)."""
    token = _PLAIN.set(True)
    try:
        yield
    finally:
        _PLAIN.reset(token)


def _prepacked_ops() -> bool:
    import torch

    return bool(torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn_prepacked, "conv2d_prepack"))


def prepare_trans_conv(module: Any) -> None:
    """Rebuild a transposed convolution (kernel = stride or 2 x stride) as an ordinary
    convolution (``module.conv``) with kernel 1 or 2 over the previous input sample and the
    current one, and ``stride`` times the output channels.  Its output rows are ordered so
    that interleaving them is a view in the layout the module runs in: phase-major
    (``j * out + c``) when time-major, channel-major (``c * stride + j``) otherwise."""
    import torch
    from torch import nn

    from qtts.engine.weights.quant import release_pages

    trans_conv = module.conv
    weight = trans_conv.weight.detach()  # (in, out, kernel)
    stride, kernel = trans_conv.stride[0], trans_conv.kernel_size[0]
    channels_in, channels_out = weight.shape[0], weight.shape[1]
    # the rebuilt convolution has stride x the output channels; on AMX tiles it runs time-major
    time_major = channels_out <= TIME_MAJOR_CHANNELS or amx_applies(channels_in, channels_out * stride, weight.dtype)

    def phase_rows(taps: Any) -> Any:  # (in, out, stride) -> (rows, in)
        order = (2, 1, 0) if time_major else (1, 2, 0)
        return taps.permute(*order).reshape(channels_out * stride, channels_in)

    if kernel == stride:
        taps = [phase_rows(weight)]
    else:  # the previous sample meets the kernel's second half, the current one its first
        taps = [phase_rows(weight[:, :, stride:]), phase_rows(weight[:, :, :stride])]
    conv = nn.Conv1d(channels_in, channels_out * stride, len(taps), bias=trans_conv.bias is not None,
                     dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(torch.stack(taps, dim=-1))
        if trans_conv.bias is not None:
            bias = trans_conv.bias.detach()
            conv.bias.copy_(bias.repeat(stride) if time_major else bias.repeat_interleave(stride))
    module.conv = conv.eval()
    release_pages(weight)  # the transposed weights' pages, when they lie in the mapped checkpoint
    module.qtts_stride, module.qtts_overlap, module.qtts_time_major = stride, kernel == 2 * stride, time_major
    prepare_amx(module)
    prepack(module)
