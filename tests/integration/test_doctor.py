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
