"""qtts doctor, including --run-smoke through real qwen_tts on the tiny checkpoint."""

import json

from tests.integration.helpers import run


def test_run_smoke_exits_zero_and_reports_timings(tiny_env):
    result = run("doctor", "--run-smoke", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    names = {c["name"]: c for c in report["checks"]}
    assert {"python", "torch", "qwen-tts", "transformers", "torchaudio", "cpu", "memory", "disk", "model",
            "sox", "voices"} <= set(names)
    assert names["model"]["status"] == "ok"
    smoke = report["smoke"]
    assert smoke["audio_seconds"] > 0 and smoke["rtf"] > 0 and smoke["peak_rss_bytes"] > 0
    assert names["upstream"]["status"] == "ok"
    patches = smoke["upstream_patches"]["patches"]
    assert patches["talker loop"] == 1 and patches["code predictor loop"] == 1 and patches["decoder SnakeBeta"] > 0
    assert patches["talker linears quantized"] > 0 and patches["projections fused"] > 0  # int8 by default


def test_an_untested_qwen_tts_is_refused_at_load_unless_allowed(tiny_env, reference_clip, tmp_path, monkeypatch):
    from qtts.engine.upstream import imports as upstream

    real = upstream.installed_versions()
    monkeypatch.setattr(upstream, "installed_versions", lambda: {**real, "qwen_tts": "0.2.0"})
    speak = ("speak", "--ref-audio", str(reference_clip), "--x-vector-only", "--text", "Hi.", "--max-frames", "4")
    refused = run(*speak, "--out", str(tmp_path / "refused.wav"))
    assert refused.exit_code == 5 and "tested with qwen_tts==0.1.1" in refused.stderr and "hint:" in refused.stderr
    assert not (tmp_path / "refused.wav").exists()
    monkeypatch.setenv(upstream.ALLOW_UNTESTED_ENV, "1")
    assert run(*speak, "--out", str(tmp_path / "allowed.wav")).exit_code == 0
    monkeypatch.delenv(upstream.ALLOW_UNTESTED_ENV)
    doctor = run("doctor", "--json")
    checks = {c["name"]: c for c in __import__("json").loads(doctor.stdout)["checks"]}
    assert checks["upstream"]["status"] == "fail" and "0.2.0" in checks["upstream"]["detail"]
    import pytest

    with pytest.raises(upstream.DependencyProblem, match="tested with qwen_tts==0.1.1"):
        upstream.check_versions()
    monkeypatch.setenv(upstream.ALLOW_UNTESTED_ENV, "1")
    assert upstream.check_versions()["qwen_tts"] == "0.2.0"


def test_a_patch_that_finds_nothing_fails_loudly_with_its_name(tiny_model):
    import pytest
    import torch

    from qtts.engine import upstream
    from qtts.errors import DependencyProblem

    tts = upstream.import_qwen_tts().Qwen3TTSModel.from_pretrained(str(tiny_model), device_map="cpu",
                                                                    dtype=torch.float32)
    decoder = tts.model.speech_tokenizer.model
    for name, module in list(decoder.named_modules()):  # as if upstream had renamed its activation class
        for child_name, child in list(module.named_children()):
            if type(child).__name__ == "SnakeBeta":
                setattr(module, child_name, torch.nn.Identity())
    with pytest.raises(DependencyProblem, match="'decoder SnakeBeta' found nothing to patch"):
        upstream.install(tts.model, "fp32")


def test_run_smoke_reuses_the_smoke_voice(tiny_env, isolated_home):
    assert run("doctor", "--run-smoke").exit_code == 0
    created = (isolated_home / "voices" / "smoke" / "meta.json").stat().st_mtime_ns
    result = run("doctor", "--run-smoke")
    assert result.exit_code == 0 and "smoke: load" in result.stdout
    assert (isolated_home / "voices" / "smoke" / "meta.json").stat().st_mtime_ns == created


def test_missing_model_fails_with_the_pull_command(monkeypatch):
    monkeypatch.setenv("QTTS_MODEL_ID", "Qwen/Qwen3-TTS-12Hz-1.7B-Base")
    result = run("doctor")
    assert result.exit_code == 1
    assert "qtts models pull Qwen/Qwen3-TTS-12Hz-1.7B-Base" in result.stdout


def test_failed_smoke_exits_with_the_classified_cause(tiny_env, monkeypatch):
    monkeypatch.setenv("QTTS_MEMORY_LIMIT_BYTES", "1000")
    result = run("doctor", "--run-smoke")
    assert result.exit_code == 4
    assert "not enough memory" in result.stderr
