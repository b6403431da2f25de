"""The one door to qwen_tts's and transformers' internals: everything qtts replaces, wraps
or calls that is not their public API goes through this module, checked against the pinned
versions.

- ``import_qwen_tts()``: the import, quietly, without torchaudio's native parts (below), and
  refusing versions other than the pinned ones unless ``QTTS_ALLOW_UNTESTED_UPSTREAM=1``.
- ``install(model, precision, int8_kernel)``: the CPU fast path on a loaded model's
  instances (qwen_tts's classes are not modified): low-bit linears (``quant``) in the
  talker and code predictor, their fused projections (``layers``), the lean talker and
  code-predictor loops in place of the two ``generate`` methods (``talker``,
  ``code_predictor``), and the lean SnakeBeta in the decoder (``codec_decoder``).  Each
  patch counts what it replaced and fails loudly when it finds nothing: a changed upstream
  shows as a dependency error naming the patch, not as a traceback or a silent slow path.
  The returned ``PatchReport`` is what ``qtts doctor`` prints.
- ``wrap_talker_generate`` (the per-call guard), ``generation_inputs`` (qwen_tts's
  private tokenization helpers, for each model kind) and ``talker_inputs`` (upstream's
  prompt building, stopped where it hands over to the talker: the continuous batcher).

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qtts.errors import DependencyProblem
from qtts.precision import precision as precision_of

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


# -- the patches -----------------------------------------------------------------------------

@dataclass
class PatchReport:
    """What ``install`` changed on a loaded model: replacements counted per patch."""

    precision: str
    versions: dict[str, str]
    patches: dict[str, int] = field(default_factory=dict)
    activation_dtype: str = ""
    int8_kernel: str = "torch"


def install(model: Any, precision: str, int8_kernel: bool = True, cache_home: Path | None = None,
            model_dir: Path | None = None) -> PatchReport:
    """Install the CPU fast path on a loaded ``Qwen3TTSForConditionalGeneration``.  With
    ``cache_home`` and ``model_dir``, low-bit weights come from (or go to) the weight cache."""
    from qtts.engine import kernels, native_stack, weight_cache
    from qtts.engine.code_predictor import lean_code_predictor
    from qtts.engine.layers import fuse_projections
    from qtts.engine.quant import Quantizer, saved_tensors
    from qtts.engine.talker import LeanTalker

    talker = model.talker
    predictor = talker.code_predictor
    # at every load, not only at the first import: a long-lived process may outlast an upgrade
    report = PatchReport(precision, check_versions())
    kernel = None
    if precision_of(precision).low_bit:
        kernel = kernels.load() if precision == "int8" and int8_kernel else None
        layout = f"{kernel.variant()}-w{kernel.pack_width()}" if kernel is not None else f"torch{PINNED['torch']}"
        cache = (weight_cache.cache_file(cache_home, model_dir, precision, layout)
                 if cache_home is not None and model_dir is not None else None)
        loaded = weight_cache.load(cache) if cache is not None else None
        quantizer = Quantizer(precision, kernel=kernel, cached=loaded[0] if loaded else None)
        # Found must be > 0; replaced may be fewer (too narrow for the scheme, e.g. int4 on a tiny model).
        _require("talker linears", _count_linears(talker.model))
        _require("code predictor linears", _count_linears(predictor))
        report.patches["talker linears quantized"] = quantizer.module(talker.model, "talker.model")
        replacement = quantizer.linear(talker.codec_head, "talker.codec_head")
        report.patches["codec head quantized"] = int(replacement is not talker.codec_head)
        talker.codec_head = replacement
        report.patches["code predictor linears quantized"] = quantizer.module(predictor, "talker.code_predictor")
        report.patches["restored from the weight cache"] = quantizer.restored
        if cache is not None and loaded is None:
            _save_cache(cache, saved_tensors(model), {"model": str(model_dir), "precision": precision, "layout": layout})
        report.patches["projections fused"] = fuse_projections(talker.model.layers) + fuse_projections(predictor.model.layers)
        report.int8_kernel = kernel.variant() if kernel is not None else "torch"
    dtype = activation_dtype(talker, precision, native_kernel=kernel is not None)
    talker_native = predictor_native = None
    if kernel is not None:
        # The talker's weights pass once per frame; the code predictor's are read 15 times, and
        # its first layers may stay in the last-level cache between those passes.
        talker_native = native_stack.build(talker.model, kernel, dtype)
        predictor_native = native_stack.build(predictor.model, kernel, dtype, native_stack.cache_budget())
        report.patches["native decoder steps"] = int(talker_native is not None) + int(predictor_native is not None)
        predictor.__dict__["_qtts_frame"] = native_stack.build_frame(predictor, predictor_native, kernel)
        report.patches["native code-predictor frame"] = int(predictor.__dict__["_qtts_frame"] is not None)
    _require_attributes("code predictor loop", predictor, ("generate", "model", "lm_head", "small_to_mtp_projection"))
    predictor.generate = types.MethodType(lean_code_predictor, predictor)
    predictor.__dict__["_qtts_native"] = predictor_native
    report.patches["code predictor loop"] = 1
    _require_attributes("talker loop", talker, ("generate", "model", "codec_head", "code_predictor"))
    talker.generate = LeanTalker(talker, dtype, talker_native)
    report.patches["talker loop"] = 1
    report.activation_dtype = str(dtype).replace("torch.", "")
    report.patches.update(speed_up_decoder(model.speech_tokenizer))
    report.patches.update(fp32_where_bf16_is_emulated(model))
    return report


def _save_cache(path: Path, tensors: dict[str, Any], metadata: dict[str, str]) -> None:
    from qtts.engine import weight_cache
    from qtts.errors import QttsError

    try:
        weight_cache.save(path, tensors, metadata)
    except QttsError as exc:  # a full disk must not fail the load: the next one quantizes again
        log.warning("could not keep the quantized weights (%s); %s", exc.message, exc.hint)


def _count_linears(module: Any) -> int:
    from torch import nn

    return sum(isinstance(m, nn.Linear) for m in module.modules())


def _require(patch: str, count: int) -> int:
    if count == 0:
        raise DependencyProblem(f"qtts's patch '{patch}' found nothing to patch in qwen_tts {installed_versions()['qwen_tts']}",
                                hint=f"reinstall qwen-tts=={PINNED['qwen_tts']} (the README's install command)")
    return count


def _require_attributes(patch: str, module: Any, names: tuple[str, ...]) -> None:
    missing = [name for name in names if not hasattr(module, name)]
    if missing:
        raise DependencyProblem(f"qtts's patch '{patch}' cannot find {', '.join(missing)} on {type(module).__name__}",
                                hint=f"reinstall qwen-tts=={PINNED['qwen_tts']} (the README's install command)")


def activation_dtype(talker: Any, precision: str, native_kernel: bool = False) -> Any:
    """fp32 activations where qtts's int8 kernel runs (its native steps take fp32: on a Xeon
    with native bf16 and AMX, 97 ms per 1.7B frame against 150 with bf16 activations and the
    Python layers) or where the CPU has no native bf16 (emulated bf16 is slower, and the
    low-bit linears take fp32 as it is), provided that every linear the loops run was
    replaced (a plain bf16 ``nn.Linear`` needs bf16 input); otherwise the model's dtype."""
    import torch
    from torch import nn

    from qtts.engine.quant import fast_bf16_gemm

    model_dtype = next(talker.model.layers.parameters()).dtype
    looped = (talker.model.layers, talker.codec_head, talker.code_predictor)
    all_low_bit = not any(isinstance(m, nn.Linear) for part in looped for m in part.modules())
    if model_dtype == torch.float32 or (precision_of(precision).low_bit and all_low_bit
                                        and (native_kernel or not fast_bf16_gemm())):
        return torch.float32
    return model_dtype


def fp32_where_bf16_is_emulated(model: Any) -> dict[str, int]:
    """On CPUs without native bf16, the parts run once per request in the model's dtype run
    in fp32: the speaker encoder (a 12M-parameter convolutional network) and the talker's text
    projection (two 2048x2048 linears over every text token).  There torch's bf16 convolutions
    are its reference loops and its bf16 GEMM is emulated; measured on the 2-core EPYC: the
    encoder 2.08 of a 4 s reference's 2.63 s prompt, the projection 85 ms of a sentence's
    prompt (102 tokens).  Upstream casts inputs to the model's dtype and uses the outputs in
    it: each module's ``forward`` is wrapped to take its input in fp32 and give its output
    back in the input's dtype.  Counts per part (1 where installed)."""
    import torch

    from qtts.engine.quant import fast_bf16_gemm

    parts = {"speaker encoder in fp32": getattr(model, "speaker_encoder", None),
             "text projection in fp32": getattr(getattr(model, "talker", None), "text_projection", None)}
    counts = {}
    for name, module in parts.items():
        counts[name] = 0
        if module is None or fast_bf16_gemm() or next(module.parameters()).dtype != torch.bfloat16:
            continue
        module.float()
        forward = type(module).forward

        def fp32_forward(self: Any, inputs: Any, *args: Any, _forward: Any = forward, **kwargs: Any) -> Any:
            out = _forward(self, inputs.float(), *args, **kwargs)
            return out.to(inputs.dtype) if isinstance(out, torch.Tensor) else out

        module.forward = types.MethodType(fp32_forward, module)
        counts[name] = 1
    return counts


def speed_up_decoder(speech_tokenizer: Any) -> dict[str, int]:
    """Install a faster SnakeBeta on every one of the decoder's (one native pass where qtts's
    native module builds, else ``codec_decoder.lean_snake_forward``), and the stateful
    convolutions of ``codec_stream`` on its causal (transposed) convolutions, after checking
    the shapes that carrying state from one group of frames to the next relies on."""
    from qwen_tts.core.tokenizer_12hz import modeling_qwen3_tts_tokenizer_v2 as codec

    from qtts.engine import kernels
    from qtts.engine.codec_decoder import (
        lean_snake_forward,
        native_snake_forward,
        prepare_causal_conv,
        prepare_trans_conv,
    )
    from qtts.engine.codec_stream import causal_conv_forward, trans_conv_forward

    native = kernels.load()
    snake_forward = native_snake_forward if native is not None and hasattr(native, "snake") else lean_snake_forward

    counts = {"decoder SnakeBeta": 0, "decoder causal convolutions": 0, "decoder transposed convolutions": 0}
    decoder = speech_tokenizer.model.decoder
    _require_attributes("streaming decoder", decoder, ("quantizer", "pre_conv", "pre_transformer", "upsample", "decoder"))
    for module in decoder.modules():
        if isinstance(module, codec.SnakeBeta):
            module.forward = types.MethodType(snake_forward, module)
            counts["decoder SnakeBeta"] += 1
        elif isinstance(module, codec.Qwen3TTSTokenizerV2CausalConvNet):
            if module.stride != 1 or module.padding != module.kernel_size - 1:
                raise _layout_changed("a decoder convolution has a stride")
            prepare_causal_conv(module)
            module.forward = types.MethodType(causal_conv_forward, module)
            counts["decoder causal convolutions"] += 1
        elif isinstance(module, codec.Qwen3TTSTokenizerV2CausalTransConvNet):
            if hasattr(module, "qtts_stride"):  # installed already (one model, two installs)
                counts["decoder transposed convolutions"] += 1
                continue
            stride, kernel = module.conv.stride[0], module.conv.kernel_size[0]
            if module.left_pad != 0 or module.right_pad != kernel - stride or kernel not in (stride, 2 * stride):
                raise _layout_changed("a decoder transposed convolution spans more than two strides")
            prepare_trans_conv(module)
            module.forward = types.MethodType(trans_conv_forward, module)
            counts["decoder transposed convolutions"] += 1
    for name, count in counts.items():
        _require(name, count)
    return counts


def _layout_changed(what: str) -> DependencyProblem:
    return DependencyProblem(f"qtts's streaming decoder cannot carry state: {what} in qwen_tts "
                             f"{installed_versions()['qwen_tts']}",
                             hint=f"reinstall qwen-tts=={PINNED['qwen_tts']} (the README's install command)")


def wrap_talker_generate(talker: Any, wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Any:
    """Replace the talker instance's ``generate`` by ``wrapper(current generate)``; return the
    one it wrapped (the lean loop, once ``install`` ran)."""
    original = talker.generate
    talker.generate = wrapper(original)
    return original


def generation_inputs(tts: Any, texts: list[str], generate_kwargs: dict[str, Any], *,
                      prompt_items: list[Any] | None = None, ref_text: str | None = None,
                      speaker: str | None = None, instruct: str | None = None) -> dict[str, Any]:
    """The arguments ``Qwen3TTSModel.generate_voice_clone`` (``prompt_items``),
    ``generate_custom_voice`` (``speaker``) or ``generate_voice_design`` pass to the model's
    ``generate``, built with their own private helpers and each one's default
    ``non_streaming_mode`` (False for cloning, True for the other two)."""
    inputs = {"input_ids": tts._tokenize_texts([tts._build_assistant_text(t) for t in texts]),
              **tts._merge_generate_kwargs(**generate_kwargs)}
    if prompt_items is not None:
        ref_ids = None
        if ref_text:
            ref_ids = [tts._tokenize_texts([tts._build_ref_text(ref_text)])[0]] * len(texts)
        return {**inputs, "ref_ids": ref_ids, "voice_clone_prompt": tts._prompt_items_to_voice_clone_prompt(prompt_items),
                "non_streaming_mode": False}
    instruct_id = tts._tokenize_texts([tts._build_instruct_text(instruct)])[0] if instruct else None
    inputs.update(instruct_ids=[instruct_id] * len(texts), non_streaming_mode=True)
    if speaker is not None:
        inputs["speakers"] = [speaker] * len(texts)
    return inputs


class _Captured(Exception):
    pass


def talker_inputs(model: Any, generate: Callable[[], Any]) -> dict[str, Any]:
    """The arguments upstream's ``Qwen3TTSForConditionalGeneration.generate`` hands the
    talker's ``generate`` (the prompt embeddings, trailing text, generation settings), caught
    at that call: ``generate()`` runs upstream's input building and stops there.  The
    continuous batcher (``engine.batcher``) runs the talker itself from these.  The caller
    holds the engine's lock (the talker's ``generate`` is swapped for the call)."""
    talker = model.talker
    captured: dict[str, Any] = {}

    def capture(**kwargs: Any) -> Any:
        captured.update(kwargs)
        raise _Captured

    installed = talker.__dict__.get("generate")
    talker.generate = capture
    try:
        generate()
    except _Captured:
        pass
    finally:
        if installed is None:
            del talker.generate
        else:
            talker.generate = installed
    if not captured:
        raise DependencyProblem("qwen_tts's generate did not call the talker's generate",
                                hint="reinstall the pinned qwen-tts (qtts doctor)")
    return captured
