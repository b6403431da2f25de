"""Memory pre-check: estimate what loading a model needs before trying, so that a machine
that is too small gets a clear refusal with numbers instead of the OOM killer."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from qtts.models import weight_bytes

GIB = 1024**3
# Peak RSS / weight bytes, measured on full-size random checkpoints (issue #2): 1.7B fp32
# peaked at 11.6 GB for 7.7 GB of weights (1.5x); a bf16 load (memory-mapped) at 4.8 GB for
# 3.9 GB (1.25x).  Plus the Python/torch runtime itself.
# Low-bit paths quantize a bf16 memory map linear by linear, releasing each bf16 weight:
# the 1.7B int4 load peaked at 3.0 GB for 3.9 GB of bf16 weights (0.8x).
_PEAK_FACTOR = {"fp32": 1.5, "bf16": 1.25, "int8": 0.95, "int4": 0.8}
_RUNTIME_BYTES = int(0.6 * GIB)
_BYTES_PER_PARAM = {"fp32": 4, "bf16": 2, "int8": 2, "int4": 2}


@dataclass(frozen=True)
class MemoryEstimate:
    need_bytes: int
    available_bytes: int

    @property
    def fits(self) -> bool:
        return self.need_bytes <= self.available_bytes

    def describe(self) -> str:
        return f"needs ~{self.need_bytes / GIB:.1f} GiB, {self.available_bytes / GIB:.1f} GiB available"


def available_bytes(limit_bytes: int = 0) -> int:
    """Available RAM, or the configured limit if smaller (``QTTS_MEMORY_LIMIT_BYTES``)."""
    import psutil

    measured = int(psutil.virtual_memory().available)
    return min(measured, limit_bytes) if limit_bytes > 0 else measured


# Each extra chunk generated in the same batch: 1.7B int8 peaked at 6.35 GB with 4 chunks
# against 4.29 GB with one (mostly the fp32 decoder's activations).
_PER_EXTRA_CHUNK_BYTES = int(0.7 * GIB)


def estimate(model_dir: Path, precision: str, limit_bytes: int = 0, batch_size: int = 1) -> MemoryEstimate:
    weights = weight_bytes(model_dir, as_bytes_per_param=_BYTES_PER_PARAM[precision])
    need = int(weights * _PEAK_FACTOR[precision]) + _RUNTIME_BYTES + (max(batch_size, 1) - 1) * _PER_EXTRA_CHUNK_BYTES
    return MemoryEstimate(need_bytes=need, available_bytes=available_bytes(limit_bytes))


@functools.cache
def _libc() -> object | None:
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc
        return None


def trim_heap() -> None:
    """Give freed heap memory back to the system (glibc's ``malloc_trim``).

    Quantizing and decoding free many 4-50 MB temporaries between long-lived tensors; glibc
    keeps those holes, and after loading 1.7B in int8 they held 1.6 GB of RSS (measured:
    3.64 GB before, 2.03 GB after one trim).  A trim costs about a millisecond."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
