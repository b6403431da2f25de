"""The front door stays short and the repository names no rounds of work."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 180, f"README.md has {len(lines)} lines; tables belong in docs/"


def test_no_numbered_rounds_of_work():
    """History is dated (date, commit); a numbered session means nothing outside the team."""
    files = subprocess.run(["git", "ls-files", "src", "tests", "docs", "README.md"], cwd=ROOT, capture_output=True,
                           text=True).stdout.split()
    pattern = re.compile(r"\b(session|round)\s+\d+\b", re.IGNORECASE)
    found = [f"{name}: {match.group(0)}" for name in files if name.endswith((".py", ".md", ".sh", ".h", ".cpp"))
             for match in pattern.finditer((ROOT / name).read_text(encoding="utf-8", errors="replace"))]
    assert not found, found
