"""Audio in and out: reference clips to 24 kHz mono, encodings, atomic file writes.

Decoding and encoding use libsndfile (``soundfile``; its 1.2 build reads and writes WAV,
FLAC, Ogg Vorbis/Opus and MP3), and resampling uses ``soxr``.  We avoid ``librosa.resample``
on our own paths because its first call compiles numba code for ~14 s.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qtts.errors import BadInput, TooLarge

SAMPLE_RATE = 24_000
REFERENCE_PAD_S = 0.5  # silence appended to references: the reported mitigation for runaway generation
MIN_REFERENCE_S = 1.0

# name -> (libsndfile format, subtype, media type)
FORMATS: dict[str, tuple[str, str, str]] = {
    "wav": ("WAV", "PCM_16", "audio/wav"),
    "flac": ("FLAC", "PCM_16", "audio/flac"),
    "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
    "ogg": ("OGG", "VORBIS", "audio/ogg"),
    "opus": ("OGG", "OPUS", "audio/ogg"),
    "pcm": ("RAW", "PCM_16", "audio/pcm"),
}


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples in [-1, 1] at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return len(self.samples) / float(self.sample_rate)


def format_for_path(path: str | Path) -> str:
    """The output format implied by a file name's extension."""
    suffix = Path(path).suffix.lower().lstrip(".")
    suffix = {"oga": "ogg", "raw": "pcm"}.get(suffix, suffix)
    if suffix not in FORMATS:
        raise BadInput(f"cannot tell the audio format of {str(path)!r} from its extension",
                       hint=f"use one of: {', '.join('.' + f for f in FORMATS)}")
    return suffix


def check_format(name: str) -> str:
    name = name.lower()
    if name not in FORMATS:
        raise BadInput(f"unsupported audio format {name!r}", hint=f"choose one of: {', '.join(FORMATS)}")
    return name


MAX_CHANNELS = 8
RATE_RANGE = (4_000, 384_000)


def decode_audio(data: bytes | Path, *, what: str = "audio", max_seconds: float | None = None) -> Audio:
    """Read any supported file (path or bytes) to 24 kHz mono float32.

    The header is checked first (channels, rate, and ``max_seconds``), so that a long or
    odd file is refused before it is decoded; NaN or Inf samples are refused after."""
    import soundfile as sf

    if isinstance(data, Path):
        from qtts.files import check_input_file

        check_input_file(data, f"{what} file")
    if isinstance(data, (bytes, bytearray)) and not data:
        raise BadInput(f"{what} is empty", hint="upload a wav, flac, mp3 or ogg file")

    def source() -> Any:
        return io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else str(data)

    try:
        header = sf.info(source())
        _check_header(header.channels, header.samplerate, header.frames, what, max_seconds)
        samples, rate = sf.read(source(), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise BadInput(f"{what} could not be decoded as audio ({exc})",
                       hint="use a wav, flac, mp3 or ogg file") from exc
    if samples.size == 0:
        raise BadInput(f"{what} contains no samples", hint="record a clip of a few seconds")
    if not np.isfinite(samples).all():
        raise BadInput(f"{what} holds invalid samples (NaN or infinity)", hint="re-export the clip as 16-bit PCM WAV")
    mono = samples.mean(axis=1)
    return Audio(resample(mono, int(rate), SAMPLE_RATE), SAMPLE_RATE)


def _check_header(channels: int, rate: int, frames: int, what: str, max_seconds: float | None) -> None:
    if not 1 <= channels <= MAX_CHANNELS:
        raise BadInput(f"{what} has {channels} channels", hint="use a mono or stereo clip")
    if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
        raise BadInput(f"{what} has a sample rate of {rate} Hz", hint="use a clip sampled at 16-48 kHz")
    if max_seconds is not None and frames > 0 and frames / rate > max_seconds:
        raise TooLarge(f"{what} is {frames / rate:.1f} s; the limit is {max_seconds:.0f} s",
                       hint="trim it to 3-15 s of clean speech")


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return np.ascontiguousarray(samples, dtype=np.float32)
    import soxr

    return soxr.resample(samples.astype(np.float32), rate, target, quality="HQ").astype(np.float32)


def prepare_reference(audio: Audio, max_seconds: float) -> Audio:
    """Validate a reference clip's length and append the short silence qwen_tts users add."""
    if audio.duration_s > max_seconds:  # also checked from the header, before decoding (decode_audio)
        raise TooLarge(f"reference audio is {audio.duration_s:.1f} s; the limit is {max_seconds:.0f} s",
                       hint="trim it to 3-15 s of clean speech")
    if audio.duration_s < MIN_REFERENCE_S:
        raise BadInput(f"reference audio is only {audio.duration_s:.2f} s long",
                       hint="use 3-15 s of clean speech")
    peak = float(np.max(np.abs(audio.samples)))
    if peak < 1e-4:
        raise BadInput("reference audio is silent", hint="use a recording of the voice to clone")
    samples = audio.samples / peak * 0.95 if peak > 1.0 else audio.samples
    pad = np.zeros(int(REFERENCE_PAD_S * audio.sample_rate), dtype=np.float32)
    return Audio(np.concatenate([samples.astype(np.float32), pad]), audio.sample_rate)


def join(parts: list[np.ndarray], gap_s: float = 0.25, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Concatenate chunk waveforms with short silences between them."""
    if not parts:
        return np.zeros(0, dtype=np.float32)
    gap = np.zeros(int(gap_s * sample_rate), dtype=np.float32)
    out: list[np.ndarray] = []
    for index, part in enumerate(parts):
        if index:
            out.append(gap)
        out.append(part.astype(np.float32))
    return np.concatenate(out)


def encode(audio: Audio, fmt: str) -> bytes:
    """Encode to one of ``FORMATS``; ``pcm`` is raw s16le."""
    import soundfile as sf

    major, subtype, _ = FORMATS[check_format(fmt)]
    samples = np.clip(audio.samples, -1.0, 1.0)
    if fmt == "pcm":
        return (samples * 32767.0).astype("<i2").tobytes()
    buffer = io.BytesIO()
    sf.write(buffer, samples, audio.sample_rate, format=major, subtype=subtype)
    return buffer.getvalue()


def wav_stream_header(sample_rate: int = SAMPLE_RATE) -> bytes:
    """A 16-bit mono WAV header for a stream of unknown length (sizes set to the maximum,
    as streaming servers do); PCM s16le chunks follow."""
    import struct

    unknown = 0xFFFFFFFF
    return (b"RIFF" + struct.pack("<I", unknown) + b"WAVE" + b"fmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16) +
            b"data" + struct.pack("<I", unknown))


def media_type(fmt: str) -> str:
    return FORMATS[check_format(fmt)][2]
