"""qtts: local, CPU-only Qwen3-TTS voice cloning.

The library API (the CLI and the HTTP app are thin adapters over it)::

    from qtts import Settings, Engine, VoiceLibrary, SynthesisOptions
    settings = Settings.resolve({"model_id": "0.6b"})
    engine = Engine.load(settings)
    prompt = VoiceLibrary(settings.voices_dir).prompt_for("me", engine)
    result = engine.synthesize("Hello.", prompt, SynthesisOptions(language="English"))

Importing ``qtts`` is cheap: torch and qwen_tts load inside ``Engine.load``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Engine", "SynthesisOptions", "SynthesisResult", "VoicePrompt", "VoiceLibrary", "Settings",
    "QttsError", "BadInput", "NotFound", "TooLarge", "MemoryShortage", "DependencyProblem",
    "ModelUnavailable", "SynthesisTimeout", "Cancelled",
]

from qtts.errors import (  # noqa: E402
    BadInput,
    Cancelled,
    DependencyProblem,
    MemoryShortage,
    ModelUnavailable,
    NotFound,
    QttsError,
    SynthesisTimeout,
    TooLarge,
)
from qtts.settings import Settings  # noqa: E402
from qtts.voices import VoiceLibrary  # noqa: E402


def __getattr__(name: str) -> Any:
    # The engine pulls in numpy at import; keep 'import qtts' light until it is used.
    if name in ("Engine", "SynthesisOptions", "SynthesisResult"):
        from qtts.engine import core

        return getattr(core, name)
    if name == "VoicePrompt":
        from qtts.engine.prompts import VoicePrompt

        return VoicePrompt
    raise AttributeError(name)
