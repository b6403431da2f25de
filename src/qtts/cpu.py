"""What the CPU offers, read without importing torch (so that ``--help`` stays instant): its
model name and ISA flags, and what they mean for the choices qtts offers on it."""

from __future__ import annotations

import functools
import platform
import subprocess
import sys
from pathlib import Path


@functools.lru_cache(maxsize=1)
def cpu_info() -> tuple[str, frozenset[str]]:
    """The CPU's model name and its ISA flags (``flags`` on x86, ``Features`` on Arm Linux,
    a few ``hw.optional`` keys on macOS); the machine's name and no flags where unreadable."""
    model, flags = platform.processor() or platform.machine(), set()
    if sys.platform == "darwin":
        return _darwin_info(model)
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return model, frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model") and model in (platform.processor(), platform.machine(), ""):
            model = value.strip()
        elif key in ("flags", "Features"):
            flags.update(value.split())
    return model, frozenset(flags)


def cpu_flags() -> frozenset[str]:
    """The ISA flags alone, as ``--help`` needs them: on Apple Silicon without asking
    ``sysctl`` (a process on every CLI start), since every such core has the dot product and
    qtts treats none of its bf16 as native."""
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return frozenset({"asimddp"})
    return cpu_info()[1]


def _darwin_info(model: str) -> tuple[str, frozenset[str]]:
    keys = {"hw.optional.arm.FEAT_DotProd": "asimddp", "hw.optional.arm.FEAT_BF16": "bf16",
            "hw.optional.avx2_0": "avx2"}
    try:
        out = subprocess.run(["sysctl", "machdep.cpu.brand_string", *keys], capture_output=True, text=True,
                             timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return model, frozenset()
    flags = set()
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key == "machdep.cpu.brand_string":
            model = value.strip() or model
        elif key in keys and value.strip() == "1":
            flags.add(keys[key])
    return model, frozenset(flags)


def native_bf16(flags: frozenset[str] | None = None) -> bool:
    """As ``weights.quant.fast_bf16_gemm`` decides it: AVX512-BF16 or AMX (elsewhere qtts
    treats bf16 as emulated, and refuses a bf16 decoder)."""
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def int8_kernel_isa(flags: frozenset[str] | None = None) -> bool:
    """Whether qtts's int8 kernel has a variant for this CPU (AVX2 or Arm's dot product)."""
    flags = cpu_flags() if flags is None else flags
    return bool({"avx2", "asimddp"} & flags)


def precision_help(flags: frozenset[str] | None = None) -> str:
    """``--precision``'s help, true on this CPU.  Where qtts's kernel runs, int4 measured
    slower than int8 and less faithful (1.7B RTF: AVX2 EPYC 5.78 vs 3.40, AMX Xeon 3.12 vs
    2.25; docs/bench)."""
    flags = cpu_flags() if flags is None else flags
    if int8_kernel_isa(flags):
        int8 = "int8 (default: qtts's kernel, the fastest faithful choice on this CPU)"
        # measured on x86 only; on Arm int4's speed against qtts's kernel is not known
        int4 = ("int4 (the least memory; slower than int8 here, less faithful)" if "avx2" in flags
                else "int4 (the least memory, less faithful)")
    else:
        int8 = "int8 (default; torch's kernel: this CPU has no AVX2 or dot product)"
        int4 = "int4 (the least memory, less faithful)"
    bf16 = "bf16 (native on this CPU)" if native_bf16(flags) else "bf16 (emulated on this CPU: slow)"
    return f"Talker/code-predictor weights: {int8}, {int4}, {bf16}, fp32 (upstream's exact numbers, most memory)."


def decoder_precision_help(flags: frozenset[str] | None = None) -> str:
    """``--decoder-precision``'s help, true on this CPU."""
    if native_bf16(flags):
        return "Audio decoder precision: fp32 (default) or bf16 (native on this CPU; less faithful)."
    return ("Audio decoder precision: fp32 (default). bf16 is refused on this CPU: without native bf16 "
            "(AVX512-BF16 or AMX) it runs many times slower.")
