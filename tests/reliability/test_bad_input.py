"""Each class of bad input gets a clear error with its exit code (or 4xx), and nothing
partial is left behind; a batch reports a bad line and goes on.  Real qwen_tts, tiny model."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from qtts.cli.main import cli
from tests.integration.helpers import run

pytestmark = pytest.mark.tally("bad_input")


@pytest.fixture()
def voice(tiny_env, reference_clip):
    assert run("clone", "create", "--voice-id", "v", "--ref-audio", str(reference_clip),
               "--x-vector-only").exit_code == 0
    return "v"


def _float_wav(path, poison):
    samples = (0.3 * np.sin(np.arange(48000) / 10)).astype(np.float32)
    samples[1000] = poison
    sf.write(path, samples, 16000, subtype="FLOAT")
    return path


@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_a_float_wav_with_nan_or_inf_is_refused_as_a_reference(tiny_env, tmp_path, poison):
    clip = _float_wav(tmp_path / "bad.wav", poison)
    result = run("clone", "create", "--voice-id", "bad", "--ref-audio", str(clip), "--x-vector-only")
    assert result.exit_code == 2 and "NaN or infinity" in result.stderr and "hint:" in result.stderr
    assert run("clone", "list").stdout.strip() == "" or "bad" not in run("clone", "list").stdout


def test_a_long_reference_is_refused_from_its_header_before_decoding(tiny_env, tmp_path, monkeypatch):
    clip = tmp_path / "ten-minutes.wav"
    sf.write(clip, np.zeros(600 * 8000, dtype=np.int16), 8000, subtype="PCM_16")

    def no_decoding(*_args, **_kwargs):
        raise AssertionError("the whole file was decoded")

    monkeypatch.setattr(sf, "read", no_decoding)
    result = run("clone", "create", "--voice-id", "long", "--ref-audio", str(clip), "--x-vector-only")
    assert result.exit_code == 2 and "600.0 s; the limit is 30 s" in result.stderr


@pytest.mark.parametrize("text", ["?!... ---", "😀🎉 👍", "。。。！", "\u200d\u200c"])
def test_text_with_nothing_to_speak_is_refused(voice, tmp_path, text):
    out = tmp_path / "x.wav"
    result = run("speak", "--voice-id", voice, "--text", text, "--out", str(out))
    assert result.exit_code == 2 and "nothing to speak" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("seed", ["18446744073709551616", "-1", "4294967296"])
def test_an_out_of_range_seed_is_a_usage_error(voice, tmp_path, seed):
    result = run("speak", "--voice-id", voice, "--text", "Hi.", "--seed", seed, "--out", str(tmp_path / "x.wav"))
    assert result.exit_code == 2 and "Traceback" not in (result.stderr + result.stdout)
    assert "--seed" in result.stderr


def test_an_out_of_range_seed_over_http_is_400(service_url):
    response = httpx.post(f"{service_url}/v1/jobs", json={"input": "hi", "voice": "alice", "seed": 2**64})
    assert response.status_code == 400 and "seed" in response.json()["error"]["message"]


def test_a_batch_line_with_a_list_valued_field_is_reported_and_the_batch_goes_on(voice, tmp_path):
    source = tmp_path / "items.jsonl"
    source.write_text("\n".join([json.dumps({"id": "a", "text": "First.", "format": ["wav", "mp3"]}),
                                 json.dumps({"id": "b", "text": "Second."}),
                                 json.dumps({"id": "c", "text": ["not", "a", "string"]})]) + "\n", encoding="utf-8")
    out_dir = tmp_path / "out"
    result = run("batch", "--input", str(source), "--out-dir", str(out_dir), "--voice-id", voice, "--max-frames", "4",
                 "--json")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "line 1: skipped: field 'format' must be a string" in result.stderr
    assert "line 3: skipped: field 'text' must be a string" in result.stderr
    assert json.loads(result.stdout)["ok"] == 1
    assert sorted(p.name for p in out_dir.iterdir()) == ["b.wav", "manifest.jsonl"]


@pytest.mark.parametrize("command", [["queue", "submit", "--voice-id", "v", "--server", "http://127.0.0.1:9"],
                                     ["speak", "--voice-id", "v", "--out", "x.wav"]])
def test_non_utf8_stdin_is_a_clear_error(tiny_env, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, command, input=b"caf\xe9 au lait\n", catch_exceptions=False)
    assert result.exit_code == 2, result.stderr
    assert "not UTF-8 text" in result.stderr and "hint:" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_nan_reference_upload_is_400(service_url, tmp_path):
    clip = _float_wav(tmp_path / "nan.wav", float("nan"))
    response = httpx.post(f"{service_url}/v1/audio/voices", data={"voice_id": "nan", "x_vector_only": "true"},
                          files={"file": ("nan.wav", clip.read_bytes(), "audio/wav")})
    assert response.status_code == 400 and "NaN" in response.json()["error"]["message"]


def test_a_reference_with_too_many_channels_is_refused(tiny_env, tmp_path):
    clip = tmp_path / "many.wav"
    sf.write(clip, np.zeros((24000, 12), dtype=np.float32), 24000)
    result = run("clone", "create", "--voice-id", "many", "--ref-audio", str(clip), "--x-vector-only")
    assert result.exit_code == 2 and "12 channels" in result.stderr


def test_replacing_a_voice_swaps_it_whole(voice, reference_clip, tmp_path, isolated_home):
    before = (isolated_home / "voices" / voice / "meta.json").read_text()
    other = tmp_path / "other.wav"
    samples, rate = sf.read(io.BytesIO(reference_clip.read_bytes()))
    sf.write(other, samples[: rate * 2], rate)
    result = run("clone", "create", "--voice-id", voice, "--ref-audio", str(other), "--ref-text", "Hello.", "--force")
    assert result.exit_code == 0, result.stderr
    after = json.loads((isolated_home / "voices" / voice / "meta.json").read_text())
    assert after["mode"] == "icl" and before != json.dumps(after)
    assert sorted(p.name for p in (isolated_home / "voices").iterdir()) == [voice]  # no staging or old copies
    mode = (isolated_home / "voices" / voice / "reference.wav").stat().st_mode & 0o777
    assert mode & 0o044 == 0o044  # readable by others under the default umask
