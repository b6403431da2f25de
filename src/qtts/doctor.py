"""Health checks for ``qtts doctor``: each check has a status and, when not ok, a fix."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qtts import audio as audio_mod
from qtts.engine.upstream import PINNED, torchaudio_status
from qtts.errors import QttsError
from qtts.settings import FALLBACK_MODEL_ID, Settings

SMOKE_REF_TEXT = "This is a short reference recording for the smoke test."
SMOKE_TEXT = "Hello from qtts."
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


def run_checks(settings: Settings) -> list[Check]:
    checks = [_python(), _torch(settings)]
    checks += [_package(dist, module) for dist, module in
               (("transformers", "transformers"), ("accelerate", "accelerate"), ("qwen-tts", "qwen_tts"))]
    checks += [_upstream(), _torchaudio(), _cpu(), _precision(settings), *_model_and_memory(settings), _disk(),
               _sox(), _speed(), _voices(settings)]
    return checks


def _python() -> Check:
    version = platform.python_version()
    ok = sys.version_info[:2] == (3, 11)
    return Check("python", "ok" if ok else "warn", version, "" if ok else "qtts is tested on Python 3.11")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _torch(settings: Settings) -> Check:
    version = _version("torch")
    if version is None:
        return Check("torch", "fail", "not installed", f"pip install torch=={PINNED['torch']}")
    import torch

    build = "CUDA build" if torch.version.cuda else "CPU build"
    threads = settings.cpu_threads or torch.get_num_threads()
    detail = f"{version} ({build}), {threads} threads of {os.cpu_count()} cores"
    if torch.version.cuda:
        return Check("torch", "warn", detail, "a CUDA build works but wastes GBs; the CPU build is "
                     f"'pip install torch=={PINNED['torch']}' on a CPU-only machine")
    expected = PINNED["torch"]
    status = "ok" if version.split("+")[0] == expected else "warn"
    return Check("torch", status, detail, "" if status == "ok" else f"tested with torch=={expected}")


def _package(dist: str, module: str) -> Check:
    version = _version(dist)
    expected = PINNED.get(module, "")
    if version is None:
        return Check(dist, "fail", "not installed", "run the README's install command")
    status = "ok" if not expected or version == expected else "warn"
    return Check(dist, status, version, "" if status == "ok" else f"expected {dist}=={expected}")


def _torchaudio() -> Check:
    kind, detail = torchaudio_status()
    if kind == "real":
        return Check("torchaudio", "ok", detail)
    return Check("torchaudio", "ok", f"stand-in ({detail})",
                 "not needed: qwen_tts imports torchaudio only for its 25 Hz tokenizer, which the 12 Hz "
                 "models never call; no CPU torchaudio exists for torch 2.13, so qtts registers a stand-in")


def cpu_features() -> list[str]:
    from qtts.cpu import cpu_info

    flags = cpu_info()[1]
    return [flag for flag in CPU_FLAGS if flag in flags]


def _cpu() -> Check:
    features = cpu_features()
    detail = f"{platform.machine()}: {', '.join(features) or 'no AVX2'}"
    if "avx2" not in features and platform.machine() == "x86_64":
        return Check("cpu", "warn", detail, "without AVX2 synthesis is several times slower")
    return Check("cpu", "ok", detail)


def precision_meaning(settings: Settings) -> str:
    """What the configured precision runs as on this CPU (also printed by ``qtts bench``)."""
    from qtts.engine import kernels
    from qtts.engine.weights.quant import fast_bf16_gemm
    from qtts.precision import precision as precision_of

    native_bf16 = fast_bf16_gemm()
    table = precision_of(settings.precision)
    parts = [table.summary]
    if settings.precision == "int8":
        parts.append(kernels.status() if settings.int8_kernel else "torch int8 kernel (int8_kernel off)")
        parts.append(_prefill_path(kernels.load() if settings.int8_kernel else None, native_bf16))
    if table.low_bit:
        if settings.precision == "int8" and settings.int8_kernel and kernels.variant() is not None:
            parts.append("fp32 activations (the kernel's native steps)")
        else:
            parts.append("bf16 activations (native here)" if native_bf16 else "fp32 activations (no native bf16 here)")
    elif settings.precision == "bf16" and not native_bf16:
        parts.append("emulated here: slow")
    load = ("low-memory (memory-mapped, linear by linear)" if settings.low_cpu_mem_usage
            else "regular (--no-low-cpu-mem)")
    decoder = settings.decoder_precision
    if decoder == "fp32" and _decoder_on_tiles():
        decoder = "fp32 (its convolutions on AMX tiles, ~110 dB against fp32)"
    return f"{settings.precision}: {', '.join(parts)}; decoder {decoder}; load {load}"


def _prefill_path(kernel: Any, native_bf16: bool) -> str:
    """Where a prompt's rows go: qtts's kernel below its many-row limit, then a bf16 GEMM where
    the CPU has native bf16 (``weights.quant.Int8Linear``)."""
    from qtts.engine.weights.quant import many_rows

    if not native_bf16:
        return "prefill on the int8 kernel"
    if kernel is None:
        return "prefill on a bf16 GEMM (native)"
    return f"prefill on the int8 kernel up to {many_rows(kernel) - 1} rows, then a bf16 GEMM (native)"


def _decoder_on_tiles() -> bool:
    """Whether the fp32 decoder's convolutions run on qtts's AMX kernel (``codec.decoder``)."""
    import torch

    from qtts.engine.codec.decoder import amx_applies

    return amx_applies(64, 64, torch.float32)


def _precision(settings: Settings) -> Check:
    from qtts.engine.weights.quant import fast_bf16_gemm

    detail = precision_meaning(settings)
    if settings.precision == "bf16" and not fast_bf16_gemm():
        return Check("precision", "warn", detail, "this CPU emulates bf16: use the default --precision int8")
    return Check("precision", "ok", detail)


def _upstream() -> Check:
    from qtts.engine.upstream import imports

    versions = imports.installed_versions()
    wrong = [name for name in imports.PATCHED_AGAINST if versions[name] != PINNED[name]]
    detail = ", ".join(f"{name} {versions[name]}" for name in imports.PATCHED_AGAINST)
    if wrong:
        return Check("upstream", "fail",
                     f"{detail}; qtts patches the internals of {', '.join(f'{n}=={PINNED[n]}' for n in wrong)}",
                     f"reinstall with the README's install command "
                     f"(or set {imports.ALLOW_UNTESTED_ENV}=1 to try anyway)")
    return Check("upstream", "ok", f"{detail}: the versions qtts's patches were tested with")


def _model_and_memory(settings: Settings) -> list[Check]:
    from qtts.engine import memory
    from qtts.hub import resolve_model

    try:
        resolved = resolve_model(settings.model_id)
    except QttsError as exc:
        total = _total_ram()
        return [Check("model", "fail", exc.message, exc.hint),
                Check("memory", "ok", f"{total / memory.GIB:.1f} GiB total (model not found, need unknown)")]
    estimate = memory.estimate(resolved.path, settings.precision, settings.memory_limit_bytes, settings.batch_size)
    kind = resolved.kind + (f", {len(resolved.speakers)} preset speakers" if resolved.speakers else "")
    model = Check("model", "ok", f"{resolved.model_id} ({kind}, {resolved.tts_model_size}) at {resolved.path}")
    if estimate.fits:
        mem = Check("memory", "ok", f"{settings.precision}: {estimate.describe()}")
    else:
        mem = Check("memory", "fail", f"{settings.precision}: {estimate.describe()}",
                    f"use --precision int4 or --model-id {FALLBACK_MODEL_ID}")
    return [model, mem]


def _total_ram() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


def _disk() -> Check:
    from huggingface_hub import constants

    cache = Path(constants.HF_HUB_CACHE)
    probe = cache if cache.exists() else next((p for p in cache.parents if p.exists()), Path("/"))
    free = shutil.disk_usage(probe).free
    status = "ok" if free > 10 * 1024**3 else "warn"
    return Check("disk", status, f"{free / 1024**3:.1f} GiB free at {cache}",
                 "" if status == "ok" else "the 1.7B model needs ~4.5 GB; set HF_HOME to a larger disk")


def _sox() -> Check:
    path = shutil.which("sox")
    if path:
        return Check("sox", "ok", path)
    return Check("sox", "ok", "not installed (not needed)",
                 "qwen_tts prints a SoX warning on import; qtts hides it. apt-get install sox silences it for good")


def _speed() -> Check:
    from qtts.stretch import method

    if method() == "rubberband":
        return Check("speed", "ok", "--speed through Rubber Band (pitch kept; chosen by measurement)")
    return Check("speed", "warn", "--speed through librosa's phase vocoder (smears harmonics): rubberband is missing",
                 "apt-get install rubberband-cli (Debian), brew install rubberband (macOS)")


def _voices(settings: Settings) -> Check:
    directory = settings.voices_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".doctor-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return Check("voices", "fail", f"{directory} is not writable ({exc.strerror})",
                     "set QTTS_HOME to a writable directory")
    return Check("voices", "ok", f"{directory} writable")


def smoke_reference(seconds: float = 3.0) -> audio_mod.Audio:
    """A built-in voice-like clip: a gliding harmonic tone with syllable-rate envelope."""
    rate = audio_mod.SAMPLE_RATE
    t = np.arange(int(seconds * rate)) / rate
    pitch = 140 + 25 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 4.0 * t)) * np.minimum(1, t * 4) * np.minimum(1, (seconds - t) * 4)
    samples = (0.3 * voice * envelope / np.max(np.abs(voice))).astype(np.float32)
    return audio_mod.Audio(samples, rate)


def run_smoke(settings: Settings, voice_id: str = "smoke", max_frames: int = 40) -> dict[str, Any]:
    """Synthesize one sentence (Base: in the smoke voice, created or reused; CustomVoice: its
    first preset speaker; VoiceDesign: a described voice); return timings."""
    from qtts.engine.core import Engine, SynthesisOptions
    from qtts.engine.prompts import DesignedVoice, SpeakerVoice, Voice
    from qtts.hub import BASE, CUSTOM_VOICE
    from qtts.voices import VoiceLibrary

    library = VoiceLibrary(settings.voices_dir)
    engine = Engine.load(settings)
    started = time.perf_counter()
    prompt: Voice
    if engine.model.tts_model_type == BASE:
        if not library.exists(voice_id):
            reference = audio_mod.prepare_reference(smoke_reference(), settings.max_reference_s)
            library.create(voice_id, reference, SMOKE_REF_TEXT, False, engine)
        prompt = library.prompt_for(voice_id, engine)
    elif engine.model.tts_model_type == CUSTOM_VOICE:
        prompt = SpeakerVoice(engine.speakers[0])
    else:
        prompt = DesignedVoice("a clear, neutral voice")
    prompt_seconds = time.perf_counter() - started
    result = engine.synthesize(SMOKE_TEXT, prompt, SynthesisOptions(seed=0, max_frames=max_frames, retry_runaway=False))
    if result.audio.duration_s <= 0:
        raise QttsError("the smoke synthesis produced no audio", hint="run with --debug and report the output")
    return {
        "model_id": engine.model.model_id,
        "precision": settings.precision,
        "load_seconds": round(engine.load_seconds, 3),
        "voice_seconds": round(prompt_seconds, 3),
        "synthesis_seconds": round(result.elapsed_s, 3),
        "audio_seconds": round(result.audio.duration_s, 3),
        "rtf": round(result.rtf, 3),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "upstream_patches": asdict(engine.patches) if engine.patches else None,
    }


def checks_to_dicts(checks: list[Check]) -> list[dict[str, str]]:
    return [asdict(c) for c in checks]
