"""What the bench runs on, and that machine's limits measured in the same run.

The per-frame cost of Qwen3-TTS on a CPU is bounded below by reading the weights once per
frame (the talker's, plus the code predictor's 15 times), and the decoder by its FLOPs.
So the bench measures the read bandwidth and the fp32 GEMM rate here and now, and reports
each path as a multiple of those floors, which stays meaningful on a noisy shared host
where absolute times move by 2x between runs.
"""

from __future__ import annotations

import platform
import re
import time
from typing import Any

ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8",
             "asimddp", "i8mm", "bf16", "sve")


def describe() -> dict[str, Any]:
    """CPU model, the ISA features that matter here, and the int8 kernel variant in use."""
    from qtts.cpu import cpu_info
    from qtts.engine import kernels

    model, flags = cpu_info()
    return {"cpu": model, "machine": platform.machine(), "isa": [f for f in ISA_FLAGS if f in flags],
            "int8_kernel": kernels.variant() or "torch", "kernel_threading": kernels.threading_summary()}


def slug(info: dict[str, Any]) -> str:
    """A file name for this machine: CPU model and its widest relevant ISA."""
    name = re.sub(r"[^a-z0-9]+", "-", info["cpu"].lower()).strip("-") or info["machine"]
    name = re.sub(r"-(\d+-core-processor|processor|cpu)$", "", name)
    widest = next((isa for isa in ("amx_int8", "avx512_vnni", "avx512f", "avx2", "asimddp") if isa in info["isa"]),
                  info["machine"])
    return f"{name}-{widest.replace('_', '')}"


def read_bandwidth_gbs(threads: int, size_bytes: int = 1 << 30, repeats: int = 5) -> float:
    """Best of ``repeats`` full reads of a 1 GiB buffer (a float sum), in GB/s."""
    import torch

    torch.set_num_threads(threads)
    data = torch.ones(size_bytes // 4)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        data.sum()
        best = min(best, time.perf_counter() - started)
    return round(size_bytes / best / 1e9, 1)


def gemm_gflops(threads: int, size: int = 1536, repeats: int = 5) -> float:
    """Best fp32 matrix-multiply rate, in GFLOP/s (the decoder's convolutions are GEMMs)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return round(2 * size**3 / best / 1e9, 1)
