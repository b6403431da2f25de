"""The native code on other compilers and cores: qtts's thread pool checked standalone (g++,
clang, aarch64 under qemu), every kernel variant compiled by clang without a warning (the
compiler family macOS has), and results that do not depend on the number of threads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
import torch
from torch import nn

from qtts.engine import kernels

KERNELS = Path(kernels.__file__).parent
POOL_CHECK = Path(__file__).parents[1] / "kernels" / "check_pool.cpp"
IN_CI = bool(os.environ.get("CI"))


def _need(*tools: str) -> list[str]:
    found = [shutil.which(t) for t in tools]
    if None in found:
        message = f"needs {', '.join(tools)} (install.sh installs them on Debian)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    return found  # type: ignore[return-value]


@pytest.mark.parametrize("compiler", ["g++", "clang++", "aarch64"])
def test_thread_pool_runs_every_item_once(compiler, tmp_path):
    binary = tmp_path / "check_pool"
    flags = ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread", f"-I{KERNELS}", str(POOL_CHECK)]
    if compiler == "aarch64":
        cxx, qemu = _need("aarch64-linux-gnu-g++", "qemu-aarch64")
        subprocess.run([cxx, *flags, "-static", "-o", str(binary)], check=True, capture_output=True, timeout=300)
        command = [qemu, "-cpu", "max", str(binary)]
    else:
        (cxx,) = _need(compiler)
        subprocess.run([cxx, *flags, "-o", str(binary)], check=True, capture_output=True, timeout=300)
        command = [str(binary)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok pool", result.stdout + result.stderr


def test_every_variant_compiles_with_clang_without_warnings():
    """binding.cpp with all its headers, per variant, as clang sees it (-Wall -Wextra;
    torch's and Python's headers are system headers).  g++ builds the variant of this CPU."""
    (clang,) = _need("clang++")
    includes = [f"-isystem{p}" for p in (*_torch_includes(), sysconfig.get_paths()["include"])]
    common = ["-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-O3", *kernels.OPENMP_FLAGS,
              "-DTORCH_EXTENSION_NAME=qtts_check", "-DTORCH_API_INCLUDE_EXTENSION_H", *includes, f"-I{KERNELS}"]
    targets = {"avx2": [], "avx512vnni": [], "avx512vnni-amx": [], "neon-dotprod": ["--target=aarch64-linux-gnu"]}
    runs = {variant: subprocess.Popen([clang, *target, *common, *kernels.VARIANT_FLAGS[variant],
                                       str(KERNELS / "binding.cpp")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)
            for variant, target in targets.items()}
    for variant, run in runs.items():
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0 and "warning" not in err, f"{variant}: {err[-2000:]}"


def _torch_includes() -> list[str]:
    from torch.utils import cpp_extension

    return cpp_extension.include_paths()


def test_results_do_not_depend_on_the_thread_count():
    module = kernels.load()
    if module is None:
        pytest.skip(f"no kernel on this CPU ({kernels.status()})")
    from qtts.engine.weights.quant import Int8Linear

    torch.manual_seed(0)
    linear = Int8Linear(nn.Linear(2048, 3072, bias=False), kernel=module)
    x = torch.randn(3, 2048)
    signal = torch.randn(2, 64, 500)
    alpha, inv_beta = torch.rand(64) + 0.5, torch.rand(64) + 0.5
    before = module.threads()
    try:
        outputs = []
        for threads in (1, 2, 3, 5):
            module.set_threads(threads)
            assert module.threads() == threads
            outputs.append((linear(x), module.snake(signal, alpha, inv_beta)))
    finally:
        module.set_threads(before)
    for gemv, snake in outputs[1:]:
        assert torch.equal(gemv, outputs[0][0]) and torch.equal(snake, outputs[0][1])
    assert "thread pool" in kernels.threading_summary()
