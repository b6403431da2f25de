"""install.sh's choices on the platforms it cannot be run on here (macOS arm64 with conda's
Python, Linux aarch64 without root), through its dry run with ``uname`` and ``id`` faked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _dry_run(tmp_path: Path, system: str, machine: str, uid: int, python: str | None = None) -> str:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "uname").write_text(f'#!/bin/sh\ncase "$1" in -s) echo {system};; -m) echo {machine};; esac\n')
    (fake / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    for tool in fake.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "QTTS_INSTALL_DRY_RUN": "1"}
    if python is not None:
        env["PYTHON"] = python
    result = subprocess.run(["bash", str(ROOT / "install.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_macos_with_condas_python_uses_no_root_no_apt_and_pypis_torch(tmp_path):
    conda = tmp_path / "miniconda3" / "envs" / "tts" / "bin"
    conda.mkdir(parents=True)
    (conda / "python").symlink_to(sys.executable)
    out = _dry_run(tmp_path, "Darwin", "arm64", 501, python=str(conda / "python"))
    assert f"system=Darwin machine=arm64 python={conda / 'python'}" in out
    assert "apt-get=no" in out and "cpu-index=no" in out


def test_linux_aarch64_without_root_tries_the_cpu_index_and_no_apt(tmp_path):
    out = _dry_run(tmp_path, "Linux", "aarch64", 1000)
    assert "apt-get=no" in out and "cpu-index=yes" in out


def test_debian_x86_64_as_root_installs_what_is_missing_with_apt(tmp_path):
    import shutil

    out = _dry_run(tmp_path, "Linux", "x86_64", 0)
    assert f"apt-get={'yes' if shutil.which('apt-get') else 'no'}" in out and "cpu-index=yes" in out
