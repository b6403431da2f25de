"""Shared fixtures.

Every test gets its own qtts home (voices, jobs, config) and no ``QTTS_*`` variables from
the developer's shell.  Integration tests share one tiny random-weight checkpoint, built
with the real qwen_tts classes by ``qtts.checkpoints`` (well under 1 MB, a few seconds).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

# Nothing a test does may land in the developer's own data directory, not even through a
# session-wide engine built with Settings.resolve(..., environ={}) (default home).
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="qtts-test-data-")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("QTTS_"):
            monkeypatch.delenv(name)
    home = tmp_path / "qtts-home"
    monkeypatch.setenv("QTTS_HOME", str(home))
    # In-process by default: the resident engine's tests (test_resident.py) turn it on.
    monkeypatch.setenv("QTTS_ENGINE", "off")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from qtts.checkpoints.builder import build_random_checkpoint

    return build_random_checkpoint("tiny", tmp_path_factory.mktemp("models") / "tiny", seed=0).path


@pytest.fixture(scope="session")
def tiny_custom_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CustomVoice checkpoint: the nine published preset speakers, instructions (1.7B tag)."""
    from qtts.checkpoints.builder import build_random_checkpoint

    return build_random_checkpoint("tiny-custom", tmp_path_factory.mktemp("models") / "tiny-custom", seed=0).path


@pytest.fixture(scope="session")
def tiny_design_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from qtts.checkpoints.builder import build_random_checkpoint

    return build_random_checkpoint("tiny-design", tmp_path_factory.mktemp("models") / "tiny-design", seed=0).path


@pytest.fixture()
def tiny_env(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the tiny checkpoint the configured model (as a user would with QTTS_MODEL_ID)."""
    monkeypatch.setenv("QTTS_MODEL_ID", str(tiny_model))
    return tiny_model


@pytest.fixture(scope="session")
def reference_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s voice-like clip at 44.1 kHz stereo, to exercise mixing and resampling."""
    from qtts.doctor import smoke_reference

    clip = smoke_reference(3.0).samples
    import soxr

    resampled = soxr.resample(clip, 24000, 44100)
    stereo = np.stack([resampled, 0.5 * resampled], axis=1)
    path = tmp_path_factory.mktemp("refs") / "ref.wav"
    sf.write(path, stereo, 44100)
    return path


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ANN001, ANN201
    """The reliability suite's tally (tests/reliability), when any of it ran."""
    try:
        from tests.reliability.conftest import TALLY
    except ImportError:
        return
    if not any(TALLY.passed.values()) and not any(TALLY.failed.values()):
        return
    write = terminalreporter.write_line
    terminalreporter.section("reliability tally")
    for kind, label in (("bad_input", "bad-input classes handled"), ("fault", "fault scenarios survived")):
        passed, failed = len(TALLY.passed[kind]), len(TALLY.failed[kind])
        failures = f" (failed: {', '.join(TALLY.failed[kind])})" if failed else ""
        write(f"{label}: {passed}/{passed + failed}{failures}")
    write(f"jobs lost: {TALLY.jobs_lost} of {TALLY.jobs_checked} checked")
    if TALLY.health_worst_s is not None:
        write(f"worst /health latency under load: {TALLY.health_worst_s * 1000:.0f} ms")
