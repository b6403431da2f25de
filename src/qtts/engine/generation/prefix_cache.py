"""The talker's keys and values of recent prompts, reused when a new prompt begins the same way.

Every prompt of a voice begins the same: the role tokens, the codec prefix with the
speaker, and for a cloned voice the reference's transcript over its first reference
frames; only then does the new text come in.  On a CPU the prompt's prefill is
compute-bound (1.5-1.9 s of a 1.7B request's first audio on a 2-core AVX2 EPYC), and
those shared positions are a quarter to a third of it.  A talker position's keys and values
depend only on the inputs at and before it, so the positions a new prompt shares with a
recent one (compared exactly, embedding row by row) are copied instead of computed.

Used only where each row's products do not depend on the others (qtts's int8 kernel): there
the reused rows are the ones a full prefill computes, and the new rows differ from a full
prefill's only by the order of the attention's sums.  The fp32 path, whose codes are
identical to upstream's, always prefills everything.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch

ENTRIES = 4  # prompts kept per model (1.7B: ~0.23 MB per position, ~18 MB for a 4 s reference)
MIN_REUSE = 4  # fewer shared positions than this are computed again


@dataclass(frozen=True, eq=False)  # entries are compared by identity
class Prefix:
    """A prompt's input rows and its keys and values, (layers, kv heads, positions, dim)."""

    inputs: torch.Tensor
    keys: torch.Tensor
    values: torch.Tensor


class PrefixCache:
    """The most recent ``ENTRIES`` prompts of one talker (thread-safe; entries are copies,
    never written)."""

    def __init__(self, entries: int = ENTRIES) -> None:
        self._entries: list[Prefix] = []  # least recently used first
        self._capacity = entries
        self._lock = threading.Lock()

    def match(self, inputs: torch.Tensor) -> tuple[int, Prefix | None]:
        """How many leading rows of ``inputs`` (positions, hidden) a kept prompt shares, and
        that prompt: at most all rows but the last (whose logits start the generation)."""
        best, found = 0, None
        with self._lock:
            for entry in self._entries:
                limit = min(len(entry.inputs), len(inputs) - 1)
                if limit <= best:
                    continue
                differs = (entry.inputs[:limit] != inputs[:limit]).any(dim=-1)
                shared = int(differs.int().argmax()) if bool(differs.any()) else limit
                if shared > best:
                    best, found = shared, entry
            if found is not None:
                self._entries.remove(found)
                self._entries.append(found)
        return (best, found) if best >= MIN_REUSE else (0, None)

    def remember(self, inputs: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Keep copies of a prompt's rows and its keys and values (views of a cache)."""
        entry = Prefix(inputs.detach().clone(), keys.clone(), values.clone())
        with self._lock:
            self._entries.append(entry)
            del self._entries[:-self._capacity]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
