"""Failure classes, end to end: each gives its exit code, one message line and a hint."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import run


@pytest.fixture()
def voice(tiny_env, reference_clip):
    assert run("clone", "create", "--voice-id", "v", "--ref-audio", str(reference_clip),
               "--x-vector-only").exit_code == 0
    return "v"


def _speak(tmp_path, *extra):
    out = tmp_path / "out.wav"
    result = run("speak", "--voice-id", "v", "--text", "Hello.", "--out", str(out), *extra)
    assert not out.exists()
    return result


def test_missing_model_directory(voice, tmp_path):
    result = _speak(tmp_path, "--model-id", str(tmp_path / "no-such-model"))
    assert result.exit_code == 3
    assert "neither a model directory" in result.stderr and "hint:" in result.stderr


def test_incomplete_model_directory(voice, tiny_model, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    (broken / "speech_tokenizer" / "model.safetensors").unlink()
    result = _speak(tmp_path, "--model-id", str(broken))
    assert result.exit_code == 3 and "missing speech_tokenizer/model.safetensors" in result.stderr


def test_uncached_repo_id_names_the_pull_command_and_the_fallback(voice, tmp_path):
    result = _speak(tmp_path, "--model-id", "1.7b")
    assert result.exit_code == 3
    assert "qtts models pull Qwen/Qwen3-TTS-12Hz-1.7B-Base" in result.stderr
    assert "Qwen/Qwen3-TTS-12Hz-0.6B-Base" in result.stderr


def test_custom_voice_model_is_refused_for_cloning(voice, tiny_custom_model, tmp_path):
    result = _speak(tmp_path, "--model-id", str(tiny_custom_model))
    assert result.exit_code == 2
    assert "CustomVoice model; cloning a voice" in result.stderr and "--model-id 1.7b" in result.stderr


def test_a_model_of_an_unknown_kind_is_a_model_error(voice, tiny_model, tmp_path):
    odd = tmp_path / "odd"
    shutil.copytree(tiny_model, odd)
    config = json.loads((odd / "config.json").read_text())
    config["tts_model_type"] = "music"
    (odd / "config.json").write_text(json.dumps(config))
    result = _speak(tmp_path, "--model-id", str(odd))
    assert result.exit_code == 3
    assert "unknown kind (tts_model_type='music')" in result.stderr


def test_corrupt_weights_are_a_model_error(voice, tiny_model, tmp_path):
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_model, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    result = _speak(tmp_path, "--model-id", str(corrupt), "--no-memory-check")
    assert result.exit_code == 3 and "failed to load" in result.stderr


def test_memory_precheck_refuses_with_numbers(voice, tmp_path, monkeypatch):
    monkeypatch.setenv("QTTS_MEMORY_LIMIT_BYTES", str(10 * 1024**2))
    result = _speak(tmp_path)
    assert result.exit_code == 4
    assert "GiB available" in result.stderr and "0.6B" in result.stderr


def test_memory_precheck_falls_back_when_asked(voice, tiny_model, tmp_path, monkeypatch, caplog):
    from qtts.engine import memory

    fallback = tmp_path / "fallback"
    shutil.copytree(tiny_model, fallback)
    real_estimate = memory.estimate

    def estimate(model_dir, precision, limit_bytes=0, batch_size=1):
        result = real_estimate(model_dir, precision, limit_bytes, batch_size)
        if Path(model_dir) != fallback.resolve():
            return memory.MemoryEstimate(need_bytes=result.available_bytes + 1, available_bytes=result.available_bytes)
        return result

    monkeypatch.setattr(memory, "estimate", estimate)
    out = tmp_path / "fb.wav"
    result = run("speak", "--voice-id", "v", "--text", "Hello.", "--out", str(out), "--seed", "1",
                 "--fallback-model-id", str(fallback), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["model_id"] == str(fallback)
    assert "loading the fallback" in caplog.text


def test_broken_qwen_tts_install_is_a_dependency_error(voice, tmp_path):
    fake = tmp_path / "fake-site"
    (fake / "qwen_tts").mkdir(parents=True)
    simulated = "raise ImportError('simulated: cannot import name X from transformers')\n"
    (fake / "qwen_tts" / "__init__.py").write_text(simulated)
    env = {**os.environ, "PYTHONPATH": str(fake)}
    out = tmp_path / "dep.wav"
    result = subprocess.run(
        [sys.executable, "-m", "qtts", "speak", "--voice-id", "v", "--text", "Hi.", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 5, result.stderr
    assert "qwen_tts could not be imported" in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
