"""Progress a person can watch, on stderr: a live bar on a terminal, a line per chunk when
stderr is a file or a pipe, nothing with ``--quiet``.  stdout stays for data."""

from __future__ import annotations

import sys
import time
from typing import Any

import click


class SynthesisProgress:
    """Frames of the chunk in progress against its frame cap (an upper bound: speech usually
    ends sooner), chunks done, the measured time per frame and an estimate of what is left."""

    def __init__(self, quiet: bool = False, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = not quiet and self.stream.isatty()
        self._bar: Any = None
        self._chunk = -1
        self._started = time.monotonic()
        self._frames_done = 0  # frames of finished chunks
        self._chunks_done = 0

    def message(self, text: str) -> None:
        """A line that stays (chunk summaries, load messages)."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            click.echo(text, err=True)
        if text.startswith("chunk "):
            self._chunks_done += 1

    def frames(self, chunk: int, chunks: int, frames: int, cap: int) -> None:
        """The engine's per-frame callback."""
        if not self.live:
            return
        from tqdm import tqdm

        if chunk != self._chunk:
            if self._bar is not None:
                self._frames_done += self._bar.n
                self._bar.close()
            self._chunk = chunk
            self._bar = tqdm(total=cap, desc=f"chunk {chunk + 1}/{chunks}", unit="frame", file=self.stream,
                             leave=False, dynamic_ncols=True, bar_format="{desc} {bar} {n_fmt}/{total_fmt} frames "
                             "[{elapsed}, {rate_fmt}]{postfix}")
        self._bar.n = frames
        elapsed = time.monotonic() - self._started
        per_frame = elapsed / max(1, self._frames_done + frames)
        average = (self._frames_done + frames) / max(1, self._chunks_done + 1)
        left = max(0.0, (chunks - chunk - 1) * average + max(0, average - frames)) * per_frame
        self._bar.set_postfix_str(f"{self._chunks_done}/{chunks} chunks done, ~{left:.0f} s left", refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
