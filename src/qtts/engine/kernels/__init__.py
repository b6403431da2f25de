"""qtts's own CPU kernel: weight-only int8 matrix products, one variant per ISA.

torch's ``_weight_int8pack_mm`` converts every weight to float before multiplying: 11 GB/s
of weights on a 2-core AVX-512 Xeon and 10.9 GB/s on a 2-core AVX2 EPYC, where plain
reading reaches 17-24 GB/s.  ``int8_gemv_core.h`` keeps the weights in int8 and multiplies
them with activations quantized to 16 bits per row, as an exact integer dot product, with
the instructions each CPU has (AVX-512 VNNI, AVX2, or aarch64's dot product).  All
variants give bit-identical results.  The same module carries the native code built on it:
a whole talker or code-predictor step (``decoder_step.h``, ``generation.native_stack``), the code
predictor's whole frame with its sampling (``predictor_frame.h``) and the decoder's SnakeBeta
in one pass (``snake.h``).

The variant for this CPU is compiled on first use with torch's extension builder (~60 s,
once; ``install.sh`` does it ahead) and linked against the OpenMP runtime torch already
loaded, so it runs on torch's threads.  Where it cannot be built or run (no compiler, a CPU
with none of these ISAs, a build lock held too long) ``int8_gemv()`` returns None and the
torch kernel is used instead; ``status()`` says why.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SOURCE = HERE / "binding.cpp"
HEADERS = [HERE / name for name in ("int8_gemv_core.h", "int8_amx.h", "conv_amx.h", "decoder_step.h",
                                    "predictor_frame.h", "snake.h", "thread_pool.h")]
# The loops run on qtts's own thread pool (thread_pool.h), not OpenMP: the same build on Linux
# and macOS (whose clang has no OpenMP runtime); OpenMP's simd pragmas only need the compiler.
OPENMP_FLAGS = ["-fopenmp-simd"]
K_MULTIPLE = 64  # the kernel's input width must be a multiple of this
# Compiler flags of each variant (the core header picks its code path from them).
VARIANT_FLAGS = {
    "avx512vnni": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx512vnni"],
    # the same, with AMX tiles for 2+ rows (int8_amx.h; same bits) and the decoder's convolutions (conv_amx.h)
    "avx512vnni-amx": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx512vnni", "-mamx-tile",
                       "-mamx-int8", "-mamx-bf16"],
    "avx2": ["-mavx2", "-mfma", "-mf16c"],
    "neon-dotprod": ["-march=armv8.2-a+dotprod"],
}
# A build takes ~60 s; a lock older than this was left by a build that was killed.
STALE_LOCK_S = 600.0
LOCK_WAIT_S = float(os.environ.get("QTTS_KERNEL_LOCK_WAIT_S", "120"))


def cpu_variant() -> str | None:
    """The best variant this CPU runs, or None."""
    import torch

    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        if torch.cpu._is_avx512_supported() and torch.cpu._is_vnni_supported():
            return "avx512vnni-amx" if _amx() else "avx512vnni"
        if torch.cpu._is_avx2_supported():
            return "avx2"
        return None
    if machine in ("aarch64", "arm64"):
        return "neon-dotprod" if _arm_dotprod() else None
    return None


def _amx() -> bool:
    """AMX with int8 and bf16 tiles, and the OS lets this process use them (Linux asks per process;
    torch's ``_init_amx`` makes that request)."""
    import torch

    from qtts.cpu import cpu_flags

    if os.environ.get("QTTS_KERNEL_AMX", "1") == "0" or not {"amx_int8", "amx_bf16"} <= cpu_flags():
        return False
    return bool(torch.cpu._is_amx_tile_supported() and torch.cpu._init_amx())


def _arm_dotprod() -> bool:
    if platform.system() == "Darwin":  # every Apple Silicon core has it; ask anyway
        try:
            out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_DotProd"], capture_output=True, text=True,
                                 timeout=5).stdout.strip()
            return out == "1"
        except (OSError, subprocess.SubprocessError):
            return False
    hwcap = _linux_hwcap()
    if hwcap is not None:
        return bool(hwcap & HWCAP_ASIMDDP)
    try:
        return any(line.startswith("Features") and " asimddp" in line
                   for line in Path("/proc/cpuinfo").read_text().splitlines())
    except OSError:
        return False


AT_HWCAP = 16
HWCAP_ASIMDDP = 1 << 20  # <asm/hwcap.h> on aarch64: the dot-product instructions


def _linux_hwcap() -> int | None:
    """The kernel's word of CPU capabilities for this process (``getauxval(AT_HWCAP)``), the
    documented way to ask on Linux; it is also what an emulator presents for the CPU it
    emulates, where ``/proc/cpuinfo`` describes the host.  None where it cannot be read."""
    import ctypes

    try:
        getauxval = ctypes.CDLL(None).getauxval
    except (OSError, AttributeError):
        return None
    getauxval.restype = ctypes.c_ulong
    getauxval.argtypes = [ctypes.c_ulong]
    return int(getauxval(AT_HWCAP)) or None


def supported_cpu() -> bool:
    return cpu_variant() is not None


@functools.cache
def load() -> Any:
    """The kernel module for this CPU, or None when this machine cannot build or run it.
    ``pack(w_int8 (N, K))`` -> packed weights; ``int8_gemv(x (M, K) fp32 or bf16, packed,
    row_sums_int32 (N,), scale_fp32 (N,))`` -> (M, N) in x's dtype; ``variant()``."""
    status, module = _build()
    if module is None:
        log.info("int8 kernel unavailable (%s); using torch's int8 kernel", status)
    else:
        import torch

        module.set_threads(torch.get_num_threads())  # the pool follows torch's intra-op threads
    return module


def module_name(variant: str) -> str:
    flags = VARIANT_FLAGS[variant]
    sources = SOURCE.read_bytes() + b"".join(header.read_bytes() for header in HEADERS)
    digest = hashlib.sha256(sources + " ".join(flags).encode()).hexdigest()[:12]
    return f"qtts_int8_{variant.replace('-', '_')}_{digest}"


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send what this process and its children write to fd 1 to fd 2 meanwhile: the build runs
    ``ninja --version``, the compiler's version check and ninja itself, which print on stdout,
    where ``qtts speak --out -`` writes audio."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@functools.cache
def _build() -> tuple[str, Any]:
    variant = cpu_variant()
    if variant is None:
        return "this CPU has none of AVX-512 VNNI, AVX2, aarch64 dot product", None
    if shutil.which(os.environ.get("CXX", "c++")) is None and shutil.which("g++") is None:
        return "no C++ compiler", None
    status, module = _build_variant(variant)
    if module is None and variant == "avx512vnni-amx":  # e.g. a compiler without -mamx-int8
        log.info("AMX build failed (%s); building the plain AVX-512 VNNI variant", status)
        status, module = _build_variant("avx512vnni")
    return status, module


def _build_variant(variant: str) -> tuple[str, Any]:
    from torch.utils import cpp_extension

    name = module_name(variant)
    waited = _wait_for_lock(Path(cpp_extension._get_build_directory(name, verbose=False)) / "lock")
    if waited:
        log.warning("qtts's int8 kernel: %s; using torch's kernel", waited)
        return waited, None
    saved_path = os.environ.get("PATH", "")
    try:
        if shutil.which("ninja") is None:  # the 'ninja' wheel's binary, when the venv is not activated
            import ninja

            os.environ["PATH"] = f"{ninja.BIN_DIR}{os.pathsep}{saved_path}"
        with _stdout_to_stderr():  # ninja's and the compiler's chatter must never reach stdout (audio)
            module = cpp_extension.load(name=name, sources=[str(SOURCE)], extra_include_paths=[str(HERE)],
                                        extra_cflags=["-O3", *VARIANT_FLAGS[variant], *OPENMP_FLAGS],
                                        verbose=False)
    except Exception as exc:  # compiler or linker failure: fall back, say why once
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("could not build qtts's int8 kernel (%s); using torch's, which is slower", first[:200])
        return f"build failed: {first[:120]}", None
    finally:
        os.environ["PATH"] = saved_path
    return f"built ({variant})", module


def _wait_for_lock(lock: Path, wait_s: float | None = None) -> str:
    """torch's builder waits forever on a lock file that a killed build left behind.  A lock
    older than ``STALE_LOCK_S`` is removed; a fresh one (another process building now) is
    waited for at most ``wait_s``.  Returns "" when the build may go ahead, else why not."""
    wait_s = LOCK_WAIT_S if wait_s is None else wait_s
    deadline = time.monotonic() + wait_s
    while lock.exists():
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            break
        if age > STALE_LOCK_S:
            log.warning("removing a stale build lock %s (%.0f s old)", lock, age)
            lock.unlink(missing_ok=True)
            break
        if time.monotonic() >= deadline:
            return f"another build has held {lock} for {age:.0f} s (remove it if no build is running)"
        time.sleep(0.5)
    return ""


def variant() -> str | None:
    """The variant in use, or None (torch's kernel)."""
    status, module = _build()
    return module.variant() if module is not None else None


def threading_summary() -> str:
    """How the native loops are threaded: qtts's own pool and its size (no OpenMP runtime)."""
    status, module = _build()
    return f"qtts thread pool, {module.threads()} threads" if module is not None else "none (torch's kernel)"


def status() -> str:
    """One line for ``qtts doctor``."""
    reason, module = _build()
    if module is None:
        return f"torch int8 kernel ({reason})"
    return f"qtts int8 kernel ({module.variant()}; qtts's thread pool, {module.threads()} threads)"
