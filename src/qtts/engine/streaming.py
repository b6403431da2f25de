"""Streaming: decode frame groups while the talker is still generating.

The talker loop (``engine.talker.LeanTalker``) hands each frame's 16 codes to its
``frame_listener`` as soon as the code predictor has made them.  Every few
frames the new frames are decoded with a bounded left context of the frames before them
(the reference codes for the first group), and the waveform is handed out.  The first
group is small so that audio starts early; later groups are larger so that the left
context costs little.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from qtts.engine.generation import SAMPLES_PER_FRAME
from qtts.engine.prompts import Voice, VoicePrompt

FIRST_GROUP = 1  # the first frame is decoded alone: audio starts after prefill + one frame
GROUP = 16
STREAM_CONTEXT = 8
# Decoding costs ~40 ms per frame of input plus ~70 ms (measured, 1.7B's decoder, 2 threads),
# so the first group's left context is shorter: 1 + 4 frames cost 0.27 s, 1 + 8 cost 0.44 s.
FIRST_CONTEXT = 4


class FrameDecoder:
    """Collects frames and decodes them group by group with a left context."""

    def __init__(self, tts: Any, prompt: Voice, eos_id: int, emit: Callable[[np.ndarray], None],
                 first_group: int = FIRST_GROUP, group: int = GROUP, context: int = STREAM_CONTEXT,
                 first_context: int = FIRST_CONTEXT) -> None:
        import torch

        self.tts = tts
        self.emit = emit
        self.eos_id = eos_id
        self.first_group, self.group, self.context, self.first_context = first_group, group, context, first_context
        self.frames: list[Any] = []
        self.emitted = 0
        self.ended = False
        ref_code = prompt.ref_code if isinstance(prompt, VoicePrompt) else None
        self.history = [] if ref_code is None else list(ref_code[-context:].to(torch.long))

    def on_frame(self, codes: Any) -> None:
        if self.ended:
            return
        if int(codes[0]) == self.eos_id:
            self.ended = True
            return
        self.frames.append(codes.to("cpu").long())
        target = self.first_group if self.emitted == 0 else self.group
        if len(self.frames) - self.emitted >= target:
            self.flush()

    def flush(self, limit: int | None = None) -> None:
        import torch

        end = len(self.frames) if limit is None else min(limit, len(self.frames))
        new = self.frames[self.emitted:end]
        if not new:
            return
        context = self.first_context if self.emitted == 0 else self.context
        before = (self.history + self.frames[:self.emitted])[-context:] if context else []
        codes = torch.stack(before + new)
        wavs, _ = self.tts.model.speech_tokenizer.decode([{"audio_codes": codes}])
        start = len(before) * SAMPLES_PER_FRAME
        self.emit(np.asarray(wavs[0][start:start + len(new) * SAMPLES_PER_FRAME], dtype=np.float32))
        self.emitted = end


class Listener:
    """A frame callback in the shape ``FrameTap.active`` takes."""

    def __init__(self, on_frame: Callable[[Any], None]) -> None:
        self.on_frame = on_frame


class FrameTap:
    """Forwards each generated frame's codes to the active ``FrameDecoder`` (if any)."""

    def __init__(self, talker_loop: Any) -> None:
        self.active: FrameDecoder | Listener | None = None
        talker_loop.frame_listener = self._on_frame

    def _on_frame(self, codes: Any) -> None:
        if self.active is not None:
            self.active.on_frame(codes)


def run_streaming(work: Callable[[Callable[[np.ndarray], None]], None]) -> Iterator[np.ndarray]:
    """Run ``work(emit)`` in a thread and yield what it emits, as it emits it; errors raised
    in the thread are raised here."""
    pieces: queue.Queue = queue.Queue()
    done = object()

    def target() -> None:
        try:
            work(pieces.put)
        except BaseException as exc:  # handed to the consumer
            pieces.put(exc)
        finally:
            pieces.put(done)

    thread = threading.Thread(target=target, name="qtts-stream", daemon=True)
    thread.start()
    while True:
        item = pieces.get()
        if item is done:
            break
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()
