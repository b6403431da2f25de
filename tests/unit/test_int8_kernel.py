"""qtts's int8 kernel, every variant against an exact reference.

The variant of this CPU is tested through torch at the real shapes; every variant's core is
also built standalone (``tests/kernels/check_kernel.cpp``) and run against a scalar int64
reference: here for x86 variants this CPU runs, and for aarch64 cross-compiled and run
under qemu-user.  A variant this machine can neither run nor emulate is compiled only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from qtts.engine import kernels
from qtts.engine.weights.quant import Int8Linear, fast_bf16_gemm, many_rows

CHECK = Path(__file__).parents[1] / "kernels" / "check_kernel.cpp"
IN_CI = bool(os.environ.get("CI"))


@pytest.fixture(scope="module")
def kernel():
    module = kernels.load()
    if kernels.supported_cpu():
        assert module is not None, f"the kernel should build on this CPU: {kernels.status()}"
        assert module.variant() == kernels.cpu_variant()
    else:
        pytest.skip(f"this CPU runs no variant ({kernels.status()}); the standalone checks below still run")
    return module


def _exact(x: torch.Tensor, linear: Int8Linear) -> torch.Tensor:
    """What the kernel computes: 16-bit activations per row, exact integer sums, in float64."""
    x = x.float()
    scale = x.abs().amax(dim=1, keepdim=True) / 32767  # in float32, as the kernel does
    q = torch.round(x * (1 / scale)).clamp(-32767, 32767).double()
    return (q @ linear.codes().double().t()) * scale.double() * linear.scale_fp32.double()


@pytest.mark.parametrize("rows, k, n", [(1, 2048, 6144), (1, 6144, 2048), (4, 2048, 1024), (3, 1024, 3072),
                                        (70, 2048, 256), (2, 64, 13), (170, 1024, 64)])
def test_kernel_is_the_exact_integer_product_at_the_real_shapes(kernel, rows, k, n):
    torch.manual_seed(k + n)
    linear = Int8Linear(nn.Linear(k, n, bias=False), kernel=kernel)
    assert linear.kernel is kernel
    x = torch.randn(rows, k) * 3
    float_product = x.double() @ linear.codes().double().t() * linear.scale_fp32.double()
    if rows >= many_rows(kernel) and fast_bf16_gemm():
        # A prefill where the CPU has native bf16 goes through oneDNN's bf16 GEMM instead
        # (Int8Linear.forward): bf16 activations; the kernel itself is still checked exactly.
        via_linear = linear(x).double()
        assert (via_linear - float_product).norm() / float_product.norm() < 1e-2
        got = kernel.int8_gemv(x, linear.weight_packed, linear.row_sums, linear.scale_fp32).double()
    else:
        got = linear(x).double()
    expected = _exact(x, linear)
    assert torch.allclose(got, expected, rtol=1e-6, atol=1e-6 * expected.abs().max().item())
    assert (got - float_product).norm() / float_product.norm() < 1e-4  # 16-bit activations: fine


def test_kernel_propagates_nan_and_inf_and_handles_zero_rows(kernel):
    linear = Int8Linear(nn.Linear(2048, 96, bias=False), kernel=kernel)
    x = torch.randn(4, 2048)
    x[1, 7] = float("nan")
    x[2, 100] = float("inf")
    x[3] = 0
    out = linear(x)
    reference = torch.nn.functional.linear(x, linear.codes().float() * linear.scale_fp32[:, None])
    assert torch.isfinite(out[0]).all()
    assert not torch.isfinite(out[1]).any() and not torch.isfinite(reference[1]).all()
    assert not torch.isfinite(out[2]).any() and not torch.isfinite(reference[2]).all()
    assert torch.equal(out[3], torch.zeros(96))


def test_kernel_rejects_a_k_it_cannot_take(kernel):
    codes = torch.zeros(8, 100, dtype=torch.int8)
    with pytest.raises(RuntimeError, match="multiple of 64"):
        kernel.pack(codes)
    linear = Int8Linear(nn.Linear(128, 16), kernel=kernel)
    with pytest.raises(RuntimeError, match="packed"):
        kernel.int8_gemv(torch.randn(1, 64), linear.weight_packed, linear.row_sums, linear.scale_fp32)


def test_bf16_activations_give_the_same_product_rounded(kernel):
    linear = Int8Linear(nn.Linear(1024, 64, bias=True), kernel=kernel)
    x = torch.randn(2, 1024).bfloat16()
    out = linear(x)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), linear(x.float()).float(), rtol=1e-2, atol=1e-2)


def _compile(compiler: str, flags: list[str], out: Path) -> None:
    subprocess.run([compiler, "-O2", *flags, f"-I{Path(kernels.__file__).parent}", str(CHECK), "-o", str(out)],
                   check=True, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("variant", ["avx2", "avx512vnni", "avx512vnni-amx"])
def test_x86_variant_core_against_the_scalar_reference(variant, tmp_path):
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("x86 variants are compiled and run on x86 hosts (an aarch64 compiler has no -mavx2)")
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.fail("no C++ compiler: install g++ (install.sh does)") if IN_CI else pytest.skip("no C++ compiler")
    binary = tmp_path / f"check_{variant}"
    _compile(compiler, kernels.VARIANT_FLAGS[variant], binary)
    order = ["avx2", "avx512vnni", "avx512vnni-amx"]
    runs = kernels.cpu_variant() in order and order.index(kernels.cpu_variant()) >= order.index(variant)
    if not runs:
        pytest.skip(f"compiled; this CPU cannot run {variant}")
    result = subprocess.run([str(binary)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith(f"ok {variant}"), result.stdout + result.stderr


def test_neon_variant_core_under_qemu(tmp_path):
    compiler, emulator = shutil.which("aarch64-linux-gnu-g++"), shutil.which("qemu-aarch64")
    native = kernels.cpu_variant() == "neon-dotprod"
    if native:
        compiler, emulator = shutil.which("g++") or shutil.which("c++"), None
    elif compiler is None or emulator is None:
        message = "needs g++-aarch64-linux-gnu and qemu-user (install.sh installs them on Debian)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    binary = tmp_path / "check_neon"
    _compile(compiler, [*kernels.VARIANT_FLAGS["neon-dotprod"], *([] if native else ["-static"])], binary)
    command = [str(binary)] if native else [emulator, "-cpu", "max", str(binary)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.startswith("ok neon-dotprod"), result.stdout + result.stderr


def test_a_failed_build_falls_back_to_torch_kernel(tmp_path):
    """A fresh build directory and a compiler that always fails: status says so, load() is None,
    and the int8 linear uses torch's kernel."""
    code = ("from qtts.engine import kernels; from qtts.engine.weights.quant import Quantizer; import torch;"
            "print(kernels.load() is None); print(kernels.status());"
            "q = Quantizer('int8', kernel=kernels.load()); lin = q.linear(torch.nn.Linear(128, 64));"
            "print(lin.kernel is None, lin(torch.randn(1, 128)).shape)")
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path / "ext"), "CXX": "false"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "True" and lines[2] == "True torch.Size([1, 64])"
    assert "torch int8 kernel" in lines[1]


def test_a_stale_build_lock_is_removed_and_a_fresh_one_waited_for_boundedly(tmp_path):
    lock = tmp_path / "lock"
    lock.write_text("")
    old = time.time() - kernels.STALE_LOCK_S - 5
    os.utime(lock, (old, old))
    assert kernels._wait_for_lock(lock, wait_s=5) == ""
    assert not lock.exists()
    lock.write_text("")  # fresh: another build is running
    started = time.monotonic()
    reason = kernels._wait_for_lock(lock, wait_s=1)
    assert "another build" in reason and time.monotonic() - started < 5


def test_amx_is_chosen_only_where_the_cpu_has_int8_tiles_and_can_be_turned_off(monkeypatch):
    from qtts import cpu

    chosen = kernels.cpu_variant()
    if chosen is None or not chosen.startswith("avx512vnni"):
        pytest.skip(f"no AVX-512 VNNI here ({chosen})")
    assert (chosen == "avx512vnni-amx") == ("amx_int8" in cpu.cpu_flags())
    monkeypatch.setenv("QTTS_KERNEL_AMX", "0")
    assert kernels.cpu_variant() == "avx512vnni"
    monkeypatch.setenv("QTTS_KERNEL_AMX", "1")
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx512f", "avx512_vnni"}))
    assert kernels.cpu_variant() == "avx512vnni"


def test_a_failed_amx_build_falls_back_to_the_plain_vnni_variant(monkeypatch):
    built = []

    def build(variant):
        built.append(variant)
        if variant == "avx512vnni-amx":
            return "build failed: no -mamx-int8", None
        return f"built ({variant})", "module"

    monkeypatch.setattr(kernels, "cpu_variant", lambda: "avx512vnni-amx")
    monkeypatch.setattr(kernels, "_build_variant", build)
    kernels._build.cache_clear()
    try:
        assert kernels._build() == ("built (avx512vnni)", "module")
        assert built == ["avx512vnni-amx", "avx512vnni"]
    finally:
        kernels._build.cache_clear()
