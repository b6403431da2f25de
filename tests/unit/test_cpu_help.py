"""The help of --precision and --decoder-precision says what each choice means on the CPU it
runs on, read from the CPU's flags without importing torch."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from qtts import cpu
from qtts.cli.main import cli

AVX2 = frozenset({"avx2", "fma"})
AMX = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"})
NEON = frozenset({"asimd", "asimddp"})
OLD_X86 = frozenset({"sse4_2", "avx"})


def test_int4_is_never_called_fastest_where_the_int8_kernel_runs():
    for flags in (AVX2, AMX, NEON):
        text = cpu.precision_help(flags)
        assert "fastest" not in text.split("int4")[1] and "qtts's kernel" in text
        # slower than int8 where measured (x86); on Arm not claimed either way
        assert ("slower than int8 here" in text) == ("avx2" in flags)
    assert "torch's kernel" in cpu.precision_help(OLD_X86) and "slower" not in cpu.precision_help(OLD_X86)


def test_bf16_is_described_as_native_or_emulated():
    assert "bf16 (native on this CPU)" in cpu.precision_help(AMX)
    assert "emulated on this CPU" in cpu.precision_help(AVX2)
    assert "refused on this CPU" in cpu.decoder_precision_help(AVX2)
    assert "refused" in cpu.decoder_precision_help(NEON)
    assert "native on this CPU" in cpu.decoder_precision_help(AMX)


def test_native_bf16_agrees_with_the_engines_check():
    import torch

    from qtts.engine.weights.quant import fast_bf16_gemm

    if sys.platform == "linux" and torch.backends.cpu.get_cpu_capability() != "DEFAULT":
        assert cpu.native_bf16() == fast_bf16_gemm()


def test_speak_help_shows_this_cpus_text():
    result = CliRunner().invoke(cli, ["speak", "--help"], terminal_width=400)
    assert result.exit_code == 0
    flat = " ".join(result.output.split())
    assert cpu.precision_help() in flat and cpu.decoder_precision_help() in flat


def test_apple_silicon_needs_no_sysctl_for_the_help(monkeypatch):
    import platform
    import subprocess as sp

    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    monkeypatch.setattr(sp, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("sysctl was run")))
    assert cpu.cpu_flags() == frozenset({"asimddp"})
    assert "qtts's kernel" in cpu.precision_help() and "refused" in cpu.decoder_precision_help()


def test_reading_the_cpu_does_not_import_torch():
    code = "import sys; from qtts import cpu; cpu.precision_help(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
