"""Fixtures for the service tests: one tiny engine per session, an app per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qtts.settings import Settings


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


@pytest.fixture()
def browser():
    from playwright.sync_api import sync_playwright

    from tests.integration.servers import require

    executable = shutil.which("chromium")
    require("chromium", executable)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()
