"""Importing qwen_tts on a CPU-only machine: quietly, and without torchaudio's native parts.

Why this exists: ``import qwen_tts`` imports its 25 Hz tokenizer code at module level, which
imports ``torchaudio.compliance.kaldi`` (and ``sox``, ``onnxruntime``, ``einops``).  The 12 Hz
models never call that code.  PyPI has no torchaudio built for torch 2.13, and the newest
one (2.11, a CUDA build) fails to load beside CPU torch (``OSError … libc10_cuda.so``).  So,
only when the real torchaudio cannot be imported, we register a minimal ``torchaudio``
package whose functions raise a ``DependencyProblem`` if anything ever calls them.
``qtts doctor`` reports which one is in use.  The import also prints a flash-attn banner to
stdout and a SoX banner to stderr; both are captured and sent to the debug log instead.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import logging
import os
import sys
import tempfile
import types
from collections.abc import Iterator
from typing import Any

from qtts.errors import DependencyProblem

log = logging.getLogger(__name__)

EXPECTED_VERSIONS = {"torch": "2.13.0", "transformers": "4.57.3", "qwen_tts": "0.1.1", "accelerate": "1.12.0"}
_STUB_MODULES = ("torchaudio", "torchaudio.compliance", "torchaudio.compliance.kaldi")


def torchaudio_status() -> tuple[str, str]:
    """("real", version) when torchaudio imports; ("stand-in", reason) when it cannot."""
    module = sys.modules.get("torchaudio")
    if module is not None and getattr(module, "__qtts_stand_in__", False):
        return "stand-in", module.__qtts_reason__
    try:
        with _quiet_fds():
            module = importlib.import_module("torchaudio")
    except Exception as exc:  # ImportError, or OSError from a mismatched native library
        return "stand-in", _short(exc)
    return "real", getattr(module, "__version__", "unknown")


def import_qwen_tts() -> Any:
    """Import and return the ``qwen_tts`` module, mapping failures to ``DependencyProblem``."""
    if sys.modules.get("qwen_tts") is not None:
        return sys.modules["qwen_tts"]
    _ensure_torch()
    kind, detail = torchaudio_status()
    if kind == "stand-in":
        _install_torchaudio_stand_in(detail)
    try:
        with _quiet_fds() as captured:
            module = importlib.import_module("qwen_tts")
    except ImportError as exc:
        raise DependencyProblem(
            f"qwen_tts could not be imported: {_short(exc)}",
            hint=f"reinstall with the README's install command (expects qwen-tts=={EXPECTED_VERSIONS['qwen_tts']}, "
            f"transformers=={EXPECTED_VERSIONS['transformers']}); run 'qtts doctor' for details",
        ) from exc
    if captured:
        log.debug("import qwen_tts printed: %s", captured[0].strip())
    return module


def _ensure_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise DependencyProblem(
            f"PyTorch is not importable: {_short(exc)}",
            hint=f"install the CPU build: pip install torch=={EXPECTED_VERSIONS['torch']}",
        ) from exc


def _install_torchaudio_stand_in(reason: str) -> None:
    def unavailable(*_args: Any, **_kwargs: Any) -> Any:
        raise DependencyProblem(
            "this feature needs torchaudio, which cannot be loaded here",
            hint="qtts uses the 12 Hz models, which do not need it; 25 Hz tokenizers are not supported",
        )

    modules = {}
    for name in _STUB_MODULES:
        module = types.ModuleType(name, "qtts stand-in: torchaudio could not be imported")
        module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None, is_package=True)
        module.__qtts_stand_in__ = True
        module.__qtts_reason__ = reason
        module.__getattr__ = lambda attr, _n=name: unavailable if not attr.startswith("__") else _raise(_n, attr)
        modules[name] = module
    modules["torchaudio"].compliance = modules["torchaudio.compliance"]
    modules["torchaudio.compliance"].kaldi = modules["torchaudio.compliance.kaldi"]
    for name, module in modules.items():
        sys.modules.setdefault(name, module)
    log.debug("torchaudio stand-in installed (%s)", reason)


def _raise(module: str, attr: str) -> Any:
    raise AttributeError(f"module {module!r} has no attribute {attr!r}")


@contextlib.contextmanager
def _quiet_fds() -> Iterator[list[str]]:
    """Capture what C code, subprocesses and print() write to fds 1 and 2 meanwhile."""
    captured: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", "replace"))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
