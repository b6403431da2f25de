"""A faster, bit-identical activation for the speech tokenizer's decoder.

Profiled on this project's 2-core machine, decoding 85 frames spent ~60% of its time in
convolutions and ~35% in elementwise passes, most of them SnakeBeta
(``x + 1/beta * sin(alpha * x)^2``), which upstream writes as five full-size temporaries.
At the last upsampling stage one temporary is 96 channels x 24000 samples/s: each pass
goes through main memory.  ``lean_snake_forward`` does the same operations, in the same
order, in place on slices short enough to stay in cache, so the result is identical to the
bit and the decoder takes ~25% less time and fewer large temporaries.  ``upstream.install``
installs it on each SnakeBeta instance.
"""

from __future__ import annotations

from typing import Any

SLICE_SAMPLES = 4096


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
