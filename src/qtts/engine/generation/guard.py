"""Per-call control of upstream generation: deadline, cancellation, progress, runaway checks.

Upstream ``Qwen3TTSForConditionalGeneration.generate`` builds the talker's generation
arguments itself and drops any extra ones, so a ``StoppingCriteria`` cannot be passed
through ``generate_voice_clone``.  ``guarded`` wraps the talker's ``generate`` on the
loaded instance once (through ``upstream.wrap_talker_generate``); the wrapper adds the
criteria of whichever ``GenerationGuard`` is active for the current call (the engine runs
one synthesis at a time).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class GenerationGuard:
    """Stops generation at a deadline or on cancellation, and counts frames for progress."""

    def __init__(
        self,
        deadline: float | None = None,
        should_cancel: Callable[[], bool] | None = None,
        on_frame: Callable[[int], None] | None = None,
    ) -> None:
        self.deadline = deadline
        self.should_cancel = should_cancel
        self.on_frame = on_frame
        self.frames = 0
        self.timed_out = False
        self.cancelled = False

    def should_stop(self) -> bool:
        """Cancelled or past the deadline (sets the flag), without counting a frame."""
        if self.should_cancel is not None and self.should_cancel():
            self.cancelled = True
        elif self.deadline is not None and time.monotonic() > self.deadline:
            self.timed_out = True
        return self.cancelled or self.timed_out

    def __call__(self, input_ids: Any, scores: Any, **_: Any) -> Any:
        import torch

        self.frames += 1
        if self.on_frame is not None:
            self.on_frame(self.frames)
        stop = False
        if self.should_cancel is not None and self.should_cancel():
            self.cancelled = stop = True
        elif self.deadline is not None and time.monotonic() > self.deadline:
            self.timed_out = stop = True
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class GuardSlot:
    """Holds the guard of the call in progress; read by the wrapped ``talker.generate``."""

    def __init__(self) -> None:
        self.active: GenerationGuard | None = None


def guarded(slot: GuardSlot) -> Any:
    """A wrapper for the talker's ``generate`` (see ``upstream.wrap_talker_generate``) that adds
    the active guard to the call's stopping criteria."""
    from transformers import StoppingCriteriaList

    def wrap(original: Any) -> Any:
        def generate_with_guard(*args: Any, **kwargs: Any) -> Any:
            if slot.active is not None:
                criteria = StoppingCriteriaList(kwargs.pop("stopping_criteria", None) or [])
                criteria.append(slot.active)
                kwargs["stopping_criteria"] = criteria
            return original(*args, **kwargs)

        return generate_with_guard

    return wrap


def looks_like_loop(codes: list[int], window: int = 40, max_period: int = 12, agreement: float = 0.95) -> bool:
    """True when the last ``window`` first-codebook codes repeat with a short period: the
    looping or stuck output that upstream users report (about 1 in 200 generations)."""
    if len(codes) < window:
        return False
    tail = codes[-window:]
    for period in range(1, max_period + 1):
        same = sum(1 for i in range(period, window) if tail[i] == tail[i - period])
        if same >= agreement * (window - period):
            return True
    return False
