"""The project's lint (``[tool.ruff]`` in pyproject.toml: lines of at most 120 characters,
pyflakes, import order) over src/ and tests/, so that CI runs it with the tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_src_and_tests_pass_the_projects_lint():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is part of the test extras (pip install -e '.[test]')"
    result = subprocess.run([ruff, "check", "--no-cache", "src", "tests"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_lint_catches_a_long_line(tmp_path):
    """The configuration is the one in effect: a 121-character line fails it."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    sample = tmp_path / "probe.py"
    sample.write_text(f'"""probe."""\n\nVALUE = "{"x" * 111}"\n')  # 121 characters
    result = subprocess.run([ruff, "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(sample)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and "E501" in result.stdout
