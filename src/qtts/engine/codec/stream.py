"""Exact decoding of new frames only: the speech tokenizer's decoder, carried from one group
of frames to the next.

Upstream decodes the reference codes and the new codes together and cuts the reference's
audio off again (every call re-decodes the 3-15 s reference); decoding the new codes with a
short left context instead is not exact, because the decoder's transformer sees 72 frames
back in each of its 8 layers (24.9 dB against upstream's full decode with 25 frames of
context, on random weights).  The decoder is causal, so it can be run group by group with
what each part carries over:

- each causal convolution: its last ``(kernel - 1) * dilation`` input samples (in place of
  upstream's zero padding);
- each overlapping transposed convolution (kernel = 2 x stride): its last input sample
  (the transposed convolutions run as ordinary ones, ``codec.decoder.prepare_trans_conv``);
- the transformer: its KV cache (a sliding window) and its positions.

A ``DecoderState`` holds them.  A voice's reference is run through the quantizer and the
transformer whole (12.5 frames per second: cheap), and through the convolution stack only
for what the later stages reach back to (``_warm_schedule``: 11 frames at the 25 Hz stage,
2 at 24 kHz), so the states it leaves are the ones a full decode would have.  The primed
state is kept per reference (a few MB), so a voice's later requests start from a copy of it.

``upstream.speed_up_decoder`` installs ``causal_conv_forward`` and ``trans_conv_forward`` on
the decoder's instances; with no state active they compute what upstream's own forward does.
"""

from __future__ import annotations

import copy
import hashlib
import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

from qtts.engine.codec.decoder import convolve, convolve_time_major

# Longer inputs are decoded in pieces of this many frames: the same waveform, and on the
# 2-core EPYC the fastest size measured (0.63-0.68 s per audio second at 25 frames, 0.9-1.0
# at 100, 1-frame pieces 2.0) with a lower peak (-330 MB at 25 against 100: the 24 kHz
# stage's tensors are 96 channels x 1920 samples per frame).
PIECE_FRAMES = 25
_PRIMED_KEEP = 16

_ACTIVE: ContextVar[DecoderState | None] = ContextVar("qtts_decoder_state", default=None)


class DecoderState:
    """What the decoder carries from one group of frames to the next."""

    def __init__(self, cache: Any) -> None:
        self.tails: dict[int, Any] = {}
        self.cache = cache

    def copy(self) -> DecoderState:
        state = DecoderState(copy.deepcopy(self.cache))
        state.tails = dict(self.tails)  # tensors are replaced, never written in place
        return state


def causal_conv_forward(self: Any, hidden: Any) -> Any:
    """``Qwen3TTSTokenizerV2CausalConvNet.forward`` (stride 1) with the left padding taken
    from the active state's tail (zeros without one, as upstream), in the module's layout."""
    import torch

    pad = self.padding
    if self.qtts_time_major:  # (batch, time, channels) in memory
        steps = _time_major(hidden)
        if not pad:
            return convolve_time_major(self, steps)
        head = _tail(self, steps.new_zeros(hidden.shape[0], pad, hidden.shape[1]))
        _keep(self, steps[:, -pad:] if steps.shape[1] >= pad else torch.cat([head, steps], dim=1)[:, -pad:])
        return convolve_time_major(self, steps, head)
    if pad:
        hidden = torch.cat([_tail(self, hidden.new_zeros(hidden.shape[0], hidden.shape[1], pad)), hidden], dim=-1)
        _keep(self, hidden[..., hidden.shape[-1] - pad:])
    return convolve(self, hidden)


def trans_conv_forward(self: Any, hidden: Any) -> Any:
    """``Qwen3TTSTokenizerV2CausalTransConvNet.forward`` as one convolution (``self.conv``,
    made by ``codec.decoder.prepare_trans_conv``) and an interleave.  Where the kernel spans
    two strides, the previous input sample (zeros at the start, as upstream) completes the
    group's first output window."""
    import torch

    stride = self.qtts_stride
    batch = hidden.shape[0]
    if self.qtts_time_major:
        steps = _time_major(hidden)
        head = None
        if self.qtts_overlap:
            head = _tail(self, steps.new_zeros(batch, 1, steps.shape[2]))
            _keep(self, steps[:, -1:])
        out = convolve_time_major(self, steps, head)
        length = out.shape[-1]  # rows are phase-major: (batch, time, phase, channel) in memory
        return out.transpose(1, 2).reshape(batch, length * stride, -1).transpose(1, 2)
    if self.qtts_overlap:
        hidden = torch.cat([_tail(self, hidden.new_zeros(batch, hidden.shape[1], 1)), hidden], dim=-1)
        _keep(self, hidden[..., -1:])
    out = convolve(self, hidden)
    length = out.shape[-1]  # rows are channel-major
    return out.view(batch, -1, stride, length).transpose(2, 3).reshape(batch, -1, length * stride)


def _time_major(hidden: Any) -> Any:
    """``hidden`` (batch, channels, time) as a contiguous (batch, time, channels) tensor (a
    view when it is laid out that way already)."""
    return hidden.transpose(1, 2).contiguous()


def _tail(module: Any, zeros: Any) -> Any:
    state = _ACTIVE.get()
    tail = state.tails.get(id(module)) if state is not None else None
    return zeros if tail is None else tail


def _keep(module: Any, tail: Any) -> None:
    """Keep a copy of ``tail`` (a view would keep the whole group's input alive)."""
    state = _ACTIVE.get()
    if state is not None:
        state.tails[id(module)] = tail.clone()


class StreamDecoder:
    """Decodes one sequence of frames group by group, exactly as one decode of all of them
    (after the reference, if the voice has one) would."""

    def __init__(self, speech_tokenizer: Any, ref_code: Any | None = None) -> None:
        self.decoder = speech_tokenizer.model.decoder
        self.state = _primed(self.decoder, ref_code)

    def decode(self, codes: Any) -> np.ndarray:
        """24 kHz float32 samples of ``codes`` ((frames, 16)), continuing the sequence."""
        import torch

        if len(codes) == 0:
            return np.zeros(0, dtype=np.float32)
        codes = torch.clamp(codes.to(torch.long), min=0).transpose(0, 1).unsqueeze(0)
        pieces = []
        with _one_at_a_time(self.decoder), torch.inference_mode():
            for start in range(0, codes.shape[-1], PIECE_FRAMES):
                hidden = _transformer_part(self.decoder, codes[..., start:start + PIECE_FRAMES], self.state)
                pieces.append(_conv_part(self.decoder, hidden, self.state)[0, 0].float().numpy())
        return np.concatenate(pieces).astype(np.float32, copy=False)


@contextmanager
def _one_at_a_time(decoder: Any) -> Iterator[None]:
    """One decode at a time per decoder, and its freed memory given back when another thread
    decoded before it.  A server's streams decode in their own threads; on a few cores
    concurrent decodes mostly contend, and each thread's temporaries (oneDNN's reordered
    weights among them, up to 75 MB per convolution) stay in its own malloc arena once freed:
    8 threads decoding 16-frame groups peaked 1.1 GB above the model, one at a time and
    trimmed after each 0.3 GB, taking 17% longer in that all-decode test (2-core EPYC, 1.7B's
    decoder; through the server, 8 streams: peak 3.65 GB, throughput within ~10%).  A thread
    decoding again right after itself reuses its arena's pages instead: trimming after every
    1.7B group, whose next group then faulted its pages in again, cost 11% of a 16-frame group
    (0.302 -> 0.269 s, the 2-core Xeon).  At most two threads' arenas hold freed pages; the
    streaming call trims once more when it ends."""
    from qtts.engine.memory import trim_heap

    with _locks_lock:
        lock = _decoder_locks.setdefault(decoder, threading.Lock())
    with lock:
        thread = threading.get_ident()
        switched = _last_thread.get(decoder) != thread
        try:
            yield
        finally:
            _last_thread[decoder] = thread
            if switched:
                trim_heap()


_locks_lock = threading.Lock()
_decoder_locks: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_last_thread: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()  # per decoder, guarded by its lock


def _transformer_part(decoder: Any, codes: Any, state: DecoderState) -> Any:
    """Upstream ``Qwen3TTSTokenizerV2Decoder.forward`` up to the convolution stack."""
    token = _ACTIVE.set(state)
    try:
        hidden = decoder.quantizer.decode(codes)
        hidden = decoder.pre_conv(hidden).transpose(1, 2)
        hidden = decoder.pre_transformer(inputs_embeds=hidden, past_key_values=state.cache,
                                         use_cache=True).last_hidden_state
        return hidden.permute(0, 2, 1)
    finally:
        _ACTIVE.reset(token)


def _stages(decoder: Any) -> list[list[Any]]:
    """The convolution stack's stages in order, each a list of modules: the upsampling
    blocks, then the waveform decoder's."""
    return [list(blocks) for blocks in decoder.upsample] + [[block] for block in decoder.decoder]


def _conv_part(decoder: Any, hidden: Any, state: DecoderState, keep: list[int] | None = None) -> Any:
    """The rest of upstream's ``forward``: the upsampling blocks and the waveform decoder.
    With ``keep`` (frames per stage, ``_warm_schedule``) only what the later stages need of
    each stage's input goes on: the states are filled, the output is not the waveform."""
    token = _ACTIVE.set(state)
    try:
        frames = hidden.shape[-1]
        for index, stage in enumerate(_stages(decoder)):
            if keep is not None:
                per_frame = hidden.shape[-1] // frames
                frames = min(frames, keep[index])
                hidden = hidden[..., hidden.shape[-1] - frames * per_frame:]
            for module in stage:
                hidden = module(hidden)
        return hidden.clamp(min=-1, max=1)
    finally:
        _ACTIVE.reset(token)


def _warm_schedule(decoder: Any) -> list[int]:
    """Frames of input each stage of the convolution stack needs so that the stages after it
    end in the states a full decode leaves: the receptive field, in frames, of that stage and
    all after it (each causal convolution sees ``(kernel - 1) * dilation`` samples back, each
    overlapping transposed convolution one input sample), rounded up, plus one.  The modules
    are recognised by what ``upstream.speed_up_decoder`` installed on them."""
    per_frame, reach = 1, []
    for stage in _stages(decoder):
        seen = 0.0
        for module in (inner for part in stage for inner in part.modules()):
            if hasattr(module, "qtts_stride"):  # a transposed convolution, as installed
                seen += (1 if module.qtts_overlap else 0) / per_frame
                per_frame *= module.qtts_stride
            elif hasattr(module, "qtts_time_major"):  # a causal convolution, as installed
                seen += module.padding / per_frame
        reach.append(seen)
    return [math.ceil(sum(reach[index:])) + 1 for index in range(len(reach))]


_primed_lock = threading.Lock()
# per decoder (weakly: a model unloaded takes its states with it), per reference
_primed_states: weakref.WeakKeyDictionary[Any, OrderedDict[str, DecoderState]] = weakref.WeakKeyDictionary()


def decoder_cache(decoder: Any) -> Any:
    """An empty KV cache for the decoder's transformer (transformers' public ``DynamicCache``,
    a sliding window as the decoder's config says)."""
    from transformers.cache_utils import DynamicCache

    return DynamicCache(config=decoder.pre_transformer.config)


def _primed(decoder: Any, ref_code: Any | None) -> DecoderState:
    """A fresh state after ``ref_code`` (kept per reference; a copy is returned)."""
    import torch

    if ref_code is None or len(ref_code) == 0:
        return DecoderState(decoder_cache(decoder))
    codes = torch.clamp(ref_code.to(torch.long), min=0)
    key = hashlib.sha1(codes.numpy().tobytes()).hexdigest()
    with _primed_lock:
        kept = _primed_states.setdefault(decoder, OrderedDict())
        state = kept.get(key)
        if state is not None:
            kept.move_to_end(key)
            return state.copy()
    state = DecoderState(decoder_cache(decoder))
    with _one_at_a_time(decoder), torch.inference_mode():
        hidden = _transformer_part(decoder, codes.transpose(0, 1).unsqueeze(0), state)
        _conv_part(decoder, hidden, state, keep=_warm_schedule(decoder))
    with _primed_lock:
        kept[key] = state
        while len(kept) > _PRIMED_KEEP:
            kept.popitem(last=False)
    return state.copy()
