import errno
import io

import numpy as np
import pytest
import soundfile as sf

from qtts import audio, files
from qtts.errors import BadInput, DiskFull, TooLarge


def _tone(seconds, rate=24000, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return mono if channels == 1 else np.stack([mono] * channels, axis=1)


@pytest.mark.parametrize("fmt, subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3",
                                                                                                     "MPEG_LAYER_III")])
def test_reference_formats_decode_to_24k_mono(fmt, subtype):
    buffer = io.BytesIO()
    sf.write(buffer, _tone(2.0, 44100, channels=2), 44100, format=fmt, subtype=subtype)
    decoded = audio.decode_audio(buffer.getvalue())
    assert decoded.sample_rate == 24000
    assert decoded.samples.ndim == 1
    assert decoded.duration_s == pytest.approx(2.0, abs=0.06)


@pytest.mark.parametrize("data", [b"", b"not audio at all", b"RIFF\x00\x00\x00\x00WAVEfmt "])
def test_corrupt_or_empty_audio_is_bad_input(data):
    with pytest.raises(BadInput):
        audio.decode_audio(data)


def test_missing_file_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        audio.decode_audio(tmp_path / "nope.wav")


def test_reference_gets_half_a_second_of_silence():
    prepared = audio.prepare_reference(audio.Audio(_tone(2.0)), max_seconds=30)
    assert prepared.duration_s == pytest.approx(2.5)
    assert not prepared.samples[-12000:].any()


def test_reference_limits():
    with pytest.raises(TooLarge):
        audio.prepare_reference(audio.Audio(_tone(31.0)), max_seconds=30)
    with pytest.raises(BadInput, match="only"):
        audio.prepare_reference(audio.Audio(_tone(0.5)), max_seconds=30)
    with pytest.raises(BadInput, match="silent"):
        audio.prepare_reference(audio.Audio(np.zeros(48000, dtype=np.float32)), max_seconds=30)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg", "opus"])
def test_encodings_decode_back_with_rate_and_length(fmt):
    samples = _tone(1.5)
    data = audio.encode(audio.Audio(samples), fmt)
    decoded, rate = sf.read(io.BytesIO(data))
    assert rate == 24000
    assert len(decoded) / rate == pytest.approx(1.5, abs=0.08)


def test_pcm_is_raw_s16le():
    data = audio.encode(audio.Audio(np.array([0.0, 0.5, -1.0], dtype=np.float32)), "pcm")
    assert np.frombuffer(data, "<i2").tolist() == [0, 16383, -32767]


def test_format_from_extension():
    assert audio.format_for_path("x.MP3") == "mp3"
    with pytest.raises(BadInput, match="extension"):
        audio.format_for_path("x.aac")


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.wav"

    def fail(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "replace", fail)
    with pytest.raises(DiskFull, match="no space left"):
        files.write_atomic(target, b"data")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_follows_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        files.write_atomic(tmp_path / "a.wav", b"x")
        os.umask(0o077)
        files.write_atomic(tmp_path / "b.wav", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.wav").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.wav").stat().st_mode & 0o777 == 0o600


def test_join_inserts_gaps():
    joined = audio.join([np.ones(10, np.float32), np.ones(5, np.float32)], gap_s=0.001, sample_rate=1000)
    assert joined.tolist() == [1.0] * 10 + [0.0] + [1.0] * 5


def test_unwritable_destination_is_bad_input(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(BadInput, match="cannot write"):
        files.write_atomic(blocker / "out.wav", b"data")
