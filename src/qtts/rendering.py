"""A request rendered as one waveform: its parts one after another (``qtts.parts``), the
chunks of each with the usual gap between them, pauses as exact silence, every chunk at the
requested speed, and where each chunk lands in the output (``--json``'s start and end,
subtitles).

The gaps between chunks belong to the speaking rate (they scale with ``speed``); a pause
written in the text is kept exactly as written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qtts.markup import Pause
from qtts.parts import Part
from qtts.request import SpeakRequest
from qtts.stretch import stretch

if TYPE_CHECKING:
    from qtts.engine.core import ChunkAudio, Engine, ProgressCallback
    from qtts.engine.prompts import Voice

PromptFor = Callable[[SpeakRequest], "Voice"]


@dataclass(frozen=True)
class Placed:
    """A chunk and its place in the output, in seconds."""

    chunk: ChunkAudio
    start_s: float
    end_s: float


def pieces(engine: Engine, parts: list[Part], prompt_for: PromptFor, speed: float = 1.0, *,
           frame_groups: bool = False, on_chunk: Callable[[ChunkAudio], None] | None = None,
           on_progress: ProgressCallback | None = None,
           should_cancel: Callable[[], bool] | None = None) -> Iterator[tuple[np.ndarray, ChunkAudio | None]]:
    """The output in order, as (samples, the chunk they voice, or None for silence).  With
    ``frame_groups`` (and no speed change) audio comes frame group by frame group as the
    engine decodes it, without chunk boundaries."""
    rate = engine.sample_rate
    spoke = False
    for part in parts:
        if isinstance(part, Pause):
            yield _silence(part.seconds, rate), None
            spoke = False
            continue
        options = part.options()
        gap = _silence(options.gap_s / speed, rate)
        if spoke:
            yield gap, None
        prompt = prompt_for(part)
        if frame_groups and abs(speed - 1.0) < 1e-3:
            for samples in engine.stream(part.text, prompt, options, should_cancel=should_cancel):
                yield samples, None
        else:
            for chunk in engine.synthesize_chunks(part.text, prompt, options, on_progress, should_cancel):
                if chunk.index:
                    yield gap, None
                if on_chunk is not None:
                    on_chunk(chunk)
                yield stretch(chunk.samples, speed, rate), chunk
        spoke = True


def render(engine: Engine, parts: list[Part], prompt_for: PromptFor, speed: float = 1.0, *,
           on_chunk: Callable[[ChunkAudio], None] | None = None, on_progress: ProgressCallback | None = None,
           should_cancel: Callable[[], bool] | None = None) -> tuple[np.ndarray, list[Placed]]:
    """The whole waveform and every chunk's place in it."""
    out: list[np.ndarray] = []
    placed: list[Placed] = []
    offset = 0
    for samples, chunk in pieces(engine, parts, prompt_for, speed, on_chunk=on_chunk, on_progress=on_progress,
                                 should_cancel=should_cancel):
        if chunk is not None:
            placed.append(Placed(chunk, offset / engine.sample_rate, (offset + len(samples)) / engine.sample_rate))
        out.append(np.asarray(samples, dtype=np.float32))
        offset += len(samples)
    return (np.concatenate(out) if out else np.zeros(0, dtype=np.float32)), placed


def _silence(seconds: float, rate: int) -> np.ndarray:
    return np.zeros(int(round(seconds * rate)), dtype=np.float32)
