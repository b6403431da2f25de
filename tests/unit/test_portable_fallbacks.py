"""Each call that only some platforms have (Linux's /proc and /sys, glibc, renameat2,
getauxval), taken away by monkeypatching: the fallback the code names does its job."""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import pytest


def _no_proc_or_sys(monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = builtins.open

    def refuse(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if str(path).startswith(("/proc/", "/sys/")):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refuse)
    real_read_text = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: refuse(self) if str(self).startswith(
        ("/proc/", "/sys/")) else real_read_text(self, *a, **k))


def test_swapping_a_voice_directory_without_renameat2(monkeypatch, tmp_path):
    from qtts import voices

    monkeypatch.setattr(voices.sys, "platform", "darwin")
    old, new = tmp_path / "me", tmp_path / "me.new"
    old.mkdir()
    new.mkdir()
    (old / "meta.json").write_text("old")
    (new / "meta.json").write_text("new")
    voices._swap_directories(new, old)
    assert (old / "meta.json").read_text() == "new" and (new / "meta.json").read_text() == "old"


def test_umask_without_proc(monkeypatch):
    from qtts import files

    expected = files.current_umask()
    _no_proc_or_sys(monkeypatch)
    assert files.current_umask() == expected
    assert files.current_umask() == expected  # and it was put back


def test_no_glibc_means_no_heap_trim(monkeypatch):
    import ctypes

    from qtts.engine import memory

    memory._libc.cache_clear()
    monkeypatch.setattr(ctypes, "CDLL", lambda *_a, **_k: (_ for _ in ()).throw(OSError("not glibc")))
    try:
        assert memory._libc() is None
        memory.trim_heap()  # nothing to call, nothing raised
    finally:
        memory._libc.cache_clear()


def test_without_proc_maps_no_page_is_released(monkeypatch):
    import torch

    from qtts.engine.weights import quant

    _no_proc_or_sys(monkeypatch)
    assert quant.safetensors_mappings() == []
    weight = torch.ones(4096)
    quant.release_pages(weight)  # not in any mapping: left alone
    assert float(weight.sum()) == 4096


def test_without_sysfs_no_layer_is_kept_in_cache(monkeypatch):
    from qtts.engine.generation import native_stack

    _no_proc_or_sys(monkeypatch)
    assert native_stack.cache_budget() == 0


@pytest.mark.parametrize("hwcap, cpuinfo, expected", [
    (1 << 20, None, True),  # getauxval says dot product
    (1 << 3, "Features\t: fp asimd asimddp\n", False),  # getauxval wins over /proc/cpuinfo (an emulator's host)
    (None, "Features\t: fp asimd asimddp\n", True),  # no getauxval: /proc/cpuinfo
    (None, None, False),  # neither: torch's kernel
])
def test_arm_dot_product_detection(monkeypatch, hwcap, cpuinfo, expected):
    from qtts.engine import kernels

    monkeypatch.setattr(kernels.platform, "system", lambda: "Linux")
    monkeypatch.setattr(kernels, "_linux_hwcap", lambda: hwcap)
    real_read_text = Path.read_text

    def read_text(self, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        if str(self) == "/proc/cpuinfo":
            if cpuinfo is None:
                raise FileNotFoundError(2, "No such file", "/proc/cpuinfo")
            return cpuinfo
        return real_read_text(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", read_text)
    assert kernels._arm_dotprod() is expected


def test_arm_dot_product_on_macos_asks_sysctl(monkeypatch):
    import subprocess

    from qtts.engine import kernels

    monkeypatch.setattr(kernels.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout="1\n"))
    assert kernels._arm_dotprod() is True
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(OSError("no sysctl")))
    assert kernels._arm_dotprod() is False


def test_a_home_too_deep_for_a_socket_moves_the_engine_under_the_temporary_directory(tmp_path):
    from qtts.resident.place import SOCKET_PATH_MAX, place_for
    from qtts.settings import Settings

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    place = place_for(Settings.resolve({"home": str(deep)}, environ={}))
    assert len(os.fsencode(place.socket)) <= SOCKET_PATH_MAX
    assert place.directory.name.startswith(f"qtts-engine-{os.getuid()}-")
    assert place_for(Settings.resolve({"home": str(deep)}, environ={})) == place  # the same home, the same place
