"""Streaming: decode frame groups while the talker is still generating.

The talker loop (``generation.talker.LeanTalker``) hands each frame's 16 codes to its
``frame_listener`` as soon as the code predictor has made them.  Every few frames the new
frames are decoded by a ``codec.stream.StreamDecoder``, which carries the decoder's state
from the reference and from the groups before (the same waveform as one decode of all of
them), and the waveform is handed out.  The first group is one frame so that audio starts
early; later groups are larger, where the decoder costs less per frame.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from qtts.engine.prompts import Voice, VoicePrompt


class DecodeCount:
    """Frame groups being decoded in this process right now (``GET /v1/batch``'s decode queue)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def __enter__(self) -> None:
        with self._lock:
            self.value += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.value -= 1


DECODING = DecodeCount()
FIRST_GROUP = 1  # the first frame is decoded alone: audio starts after prefill + one frame
GROUP = 16  # then groups of 16 frames (1.3 s of audio): the decoder's cost per frame is lower in groups


class FrameDecoder:
    """Collects frames and decodes them group by group, carrying the decoder's state from
    one group to the next (``codec.stream``): the waveform equals a decode of all frames."""

    def __init__(self, tts: Any, prompt: Voice, eos_id: int, emit: Callable[[np.ndarray], None],
                 first_group: int = FIRST_GROUP, group: int = GROUP) -> None:
        from qtts.engine.codec.stream import StreamDecoder

        self.emit = emit
        self.eos_id = eos_id
        self.first_group, self.group = first_group, group
        self.frames: list[Any] = []
        self.emitted = 0
        self.ended = False
        ref_code = prompt.ref_code if isinstance(prompt, VoicePrompt) else None
        self.decoder = StreamDecoder(tts.model.speech_tokenizer, ref_code)

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
        with DECODING:
            waveform = self.decoder.decode(torch.stack(new))
        self.emit(waveform)
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


def run_streaming(work: Callable[[Callable[[np.ndarray], None]], None],
                  stop: threading.Event | None = None) -> Iterator[np.ndarray]:
    """Run ``work(emit)`` in a thread and yield what it emits, as it emits it; errors raised
    in the thread are raised here.  A consumer that stops early (its write failed, the client
    went away) sets ``stop``, which the work's guard reads each frame, and the thread is
    joined before this returns: no generation goes on, or outlives the process, unseen."""
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
    finished = False
    try:
        while True:
            item = pieces.get()
            if item is done:
                finished = True
                break
            if isinstance(item, BaseException):
                finished = True
                raise item
            yield item
    finally:
        if not finished and stop is not None:
            stop.set()
        thread.join(timeout=None if stop is not None or finished else 0)
