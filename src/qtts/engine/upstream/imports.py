"""Importing qwen_tts, and the versions qtts was tested against.

``import_qwen_tts()`` imports it quietly, without torchaudio's native parts, and refuses
versions other than the pinned ones unless ``QTTS_ALLOW_UNTESTED_UPSTREAM=1``.

Why the import needs care: ``import qwen_tts`` imports its 25 Hz tokenizer code at module level, which
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


PINNED = {"torch": "2.13.0", "transformers": "4.57.3", "qwen_tts": "0.1.1", "accelerate": "1.12.0"}
# The versions whose internals the patches below were written and tested against.
PATCHED_AGAINST = ("qwen_tts", "transformers")
ALLOW_UNTESTED_ENV = "QTTS_ALLOW_UNTESTED_UPSTREAM"
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


_IMPORT_SECONDS: list[float] = []


def import_seconds() -> float:
    """How long this process took to import torch and qwen_tts (0 before it did)."""
    return _IMPORT_SECONDS[0] if _IMPORT_SECONDS else 0.0


def import_qwen_tts() -> Any:
    """Import and return the ``qwen_tts`` module, mapping failures to ``DependencyProblem``."""
    if sys.modules.get("qwen_tts") is not None:
        return sys.modules["qwen_tts"]
    import time

    started = time.perf_counter()
    _ensure_torch()
    kind, detail = torchaudio_status()
    if kind == "stand-in":
        _install_torchaudio_stand_in(detail)
    _skip_unused_imports()
    try:
        with _quiet_fds() as captured:
            module = importlib.import_module("qwen_tts")
    except ImportError as exc:
        raise DependencyProblem(
            f"qwen_tts could not be imported: {_short(exc)}",
            hint=f"reinstall with the README's install command (expects qwen-tts=={PINNED['qwen_tts']}, "
            f"transformers=={PINNED['transformers']}); run 'qtts doctor' for details",
        ) from exc
    if captured:
        log.debug("import qwen_tts printed: %s", captured[0].strip())
    check_versions()
    _IMPORT_SECONDS.append(time.perf_counter() - started)
    return module


def installed_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for name in PINNED:
        try:
            versions[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["torch"] = versions["torch"].split("+")[0]
    return versions


def check_versions() -> dict[str, str]:
    """The installed versions; a ``DependencyProblem`` when qwen_tts or transformers differ
    from the pinned ones (their internals are patched), unless explicitly allowed."""
    versions = installed_versions()
    wrong = {name: versions[name] for name in PATCHED_AGAINST if versions[name] != PINNED[name]}
    if wrong and os.environ.get(ALLOW_UNTESTED_ENV, "") in ("", "0"):
        found = ", ".join(f"{name} {version}" for name, version in wrong.items())
        wanted = ", ".join(f"{name}=={PINNED[name]}" for name in wrong)
        raise DependencyProblem(f"qtts was tested with {wanted}, and this machine has {found}",
                                hint=f"reinstall with the README's install command, or set {ALLOW_UNTESTED_ENV}=1 "
                                "to try anyway ('qtts doctor' shows which patches apply)")
    return versions


def _ensure_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise DependencyProblem(
            f"PyTorch is not importable: {_short(exc)}",
            hint=f"install the CPU build: pip install torch=={PINNED['torch']}",
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


# What ``import qwen_tts`` would import that a 12 Hz model never runs (``qtts doctor`` lists
# them; ``QTTS_FULL_IMPORT=1`` imports everything as upstream does).
SKIPPED_IMPORTS: list[str] = []
_TOKENIZER_25HZ = "qwen_tts.core.tokenizer_25hz.modeling_qwen3_tts_tokenizer_v1"


def _skip_unused_imports() -> None:
    """Cut the cold start by what the 12 Hz path never runs:

    - scikit-learn (~0.7 s): transformers' assisted generation (``candidate_generator``)
      imports ``sklearn.metrics`` when sklearn is installed; qtts never generates with an
      assistant model.  transformers is told sklearn is absent (its own availability flag).
    - the 25 Hz tokenizer's model code (its modules, onnxruntime, sox): ``qwen_tts.core``
      imports it at module level for 25 Hz checkpoints.  A stand-in class is registered in
      its place; using it raises a ``DependencyProblem``."""
    if os.environ.get("QTTS_FULL_IMPORT", "") not in ("", "0") or SKIPPED_IMPORTS:
        return
    from transformers.utils import import_utils

    if getattr(import_utils, "_sklearn_available", None) is True and "sklearn" not in sys.modules:
        import_utils._sklearn_available = False
        SKIPPED_IMPORTS.append("scikit-learn (transformers' assisted generation)")
    if _TOKENIZER_25HZ not in sys.modules:
        class Qwen3TTSTokenizerV1Model:  # the name qwen_tts registers with transformers' AutoModel
            def __init__(self, *_args: Any, **_kwargs: Any) -> None:
                raise DependencyProblem("qtts runs the 12 Hz models; the 25 Hz tokenizer's code was not imported",
                                        hint="set QTTS_FULL_IMPORT=1 to import it (qtts does not support 25 Hz models)")

            from_pretrained = classmethod(__init__)

        module = types.ModuleType(_TOKENIZER_25HZ, "qtts stand-in: the 25 Hz tokenizer is not used by 12 Hz models")
        module.Qwen3TTSTokenizerV1Model = Qwen3TTSTokenizerV1Model
        module.__qtts_stand_in__ = True
        sys.modules[_TOKENIZER_25HZ] = module
        SKIPPED_IMPORTS.append("the 25 Hz tokenizer's model code (with onnxruntime and sox)")


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
