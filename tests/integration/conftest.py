"""Fixtures for the service tests: one tiny engine per session, an app per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from qtts.settings import Settings
from tests.integration.resident_helpers import EngineShell


@pytest.fixture(scope="session")
def tiny_engine(tiny_model: Path):
    from qtts.engine.core import Engine

    return Engine.load(Settings.resolve({"model_id": str(tiny_model)}, environ={}))


@pytest.fixture()
def service_settings(tiny_env: Path, isolated_home: Path) -> Settings:
    return Settings.resolve({"job_lease_s": 5})


@pytest.fixture()
def library_voice(service_settings: Settings, tiny_engine, reference_clip: Path) -> str:
    from qtts.synthesis import load_reference
    from qtts.voices import VoiceLibrary

    reference = load_reference(service_settings, reference_clip)
    VoiceLibrary(service_settings.voices_dir).create("alice", reference, "Hello there, this is Alice.", False,
                                                     tiny_engine)
    return "alice"


@pytest.fixture()
def service_url(service_settings: Settings, tiny_engine, library_voice: str):
    from qtts.server.app import create_app
    from tests.integration.servers import running_app

    with running_app(create_app(service_settings, tiny_engine)) as url:
        yield url


def _chromium(*extra_args: str):  # noqa: ANN202
    from playwright.sync_api import sync_playwright

    from tests.integration.servers import require

    executable = shutil.which("chromium")
    require("chromium", executable)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", *extra_args])
        yield browser
        browser.close()


@pytest.fixture()
def browser():
    yield from _chromium()


@pytest.fixture(scope="session")
def spoken_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real speech recording (espeak-ng), 48 kHz mono 16-bit: what a microphone would give."""
    import subprocess

    import soundfile as sf
    import soxr

    from tests.integration.servers import require

    require("espeak-ng", shutil.which("espeak-ng"))
    folder = tmp_path_factory.mktemp("speech")
    raw = folder / "espeak.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw),
                    "This is my voice, recorded in the browser for a new clone."], check=True)
    samples, rate = sf.read(raw, dtype="float32")
    path = folder / "speech.wav"
    sf.write(path, soxr.resample(samples, rate, 48000), 48000, subtype="PCM_16")
    return path


@pytest.fixture()
def microphone_browser(spoken_recording: Path):
    """Chromium whose microphone plays ``spoken_recording`` (and asks no permission)."""
    yield from _chromium("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                         f"--use-file-for-fake-audio-capture={spoken_recording}")


@pytest.fixture()
def engine_shell(tmp_path: Path, tiny_model: Path) -> Iterator[EngineShell]:
    sh = EngineShell(tmp_path / "home", tiny_model)
    yield sh
    sh.stop()


@pytest.fixture()
def engine_voice(engine_shell: EngineShell, reference_clip: Path) -> str:
    """A library voice, created through the engine (which starts for it)."""
    result = engine_shell.run("clone", "create", "--voice-id", "me", "--ref-audio", str(reference_clip), "--ref-text",
                       "Hello there, this is me speaking.")
    assert result.returncode == 0, result.stderr.decode()
    assert b"starting the qtts engine" in result.stderr
    return "me"
