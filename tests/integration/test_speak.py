"""qtts speak through real qwen_tts on the tiny checkpoint."""

import pytest

from tests.integration.helpers import decode, expected_samples, run, run_json


@pytest.fixture()
def voice(tiny_env, reference_clip):
    result = run("clone", "create", "--voice-id", "alice", "--ref-audio", str(reference_clip),
                 "--ref-text", "Hello there, this is Alice.")
    assert result.exit_code == 0, result.stderr
    return "alice"


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg"])
def test_every_output_format_decodes_with_the_generated_length(voice, tmp_path, fmt):
    out = tmp_path / f"out.{fmt}"
    summary = run_json("speak", "--voice-id", voice, "--text", "Hello world.", "--seed", "3", "--out", str(out))
    rate, samples = decode(out.read_bytes())
    assert rate == 24000 == summary["sample_rate"]
    assert summary["chunks"][0]["frames"] > 0
    tolerance = 0 if fmt in ("wav", "flac") else 2000  # lossy codecs pad their frames
    assert abs(samples - expected_samples(summary)) <= tolerance
    assert summary["audio_seconds"] == pytest.approx(expected_samples(summary) / 24000, abs=0.001)


def test_multi_chunk_text_is_split_and_joined(voice, tmp_path):
    out = tmp_path / "long.wav"
    text = "The first sentence is here. The second one follows it. And a third one ends the text."
    summary = run_json("speak", "--voice-id", voice, "--text", text, "--split-max-chars", "30", "--seed", "1",
                       "--out", str(out))
    assert [c["text"] for c in summary["chunks"]] == [
        "The first sentence is here.", "The second one follows it.", "And a third one ends the text."]
    assert decode(out.read_bytes())[1] == expected_samples(summary)


@pytest.mark.parametrize("language, text", [
    ("Chinese", "今天天气很好，阳光明媚。我们去公园散步吧，好不好？"),
    ("Japanese", "こんにちは、お元気ですか。今日はとてもいい天気ですね。"),
    ("Korean", "안녕하세요, 반갑습니다. 오늘은 날씨가 정말 좋네요."),
])
def test_cjk_text(voice, tmp_path, language, text):
    out = tmp_path / "cjk.wav"
    summary = run_json("speak", "--voice-id", voice, "--text", text, "--language", language,
                       "--split-max-chars", "20", "--seed", "2", "--out", str(out))
    assert len(summary["chunks"]) == 2
    assert decode(out.read_bytes()) == (24000, expected_samples(summary))


def test_text_from_stdin_to_stdout(voice):
    result = run("speak", "--voice-id", voice, "--seed", "4", "--out", "-", "--format", "flac", input="Hi there.")
    assert result.exit_code == 0, result.stderr
    rate, samples = decode(result.stdout_bytes)
    assert rate == 24000 and samples > 0
    assert "RTF" in result.stderr


def test_text_file_and_ad_hoc_reference(tiny_env, reference_clip, tmp_path):
    text_file = tmp_path / "t.txt"
    text_file.write_text("Read from a file.", encoding="utf-8")
    out = tmp_path / "adhoc.wav"
    summary = run_json("speak", "--text-file", str(text_file), "--ref-audio", str(reference_clip),
                       "--x-vector-only", "--seed", "5", "--out", str(out))
    assert decode(out.read_bytes())[1] == expected_samples(summary)


def test_frame_cap_bounds_each_chunk(voice, tmp_path):
    summary = run_json("speak", "--voice-id", voice, "--text", "A fairly long sentence to speak now.",
                       "--max-frames", "5", "--seed", "0", "--out", str(tmp_path / "c.wav"))
    assert all(c["frames"] <= 5 for c in summary["chunks"])


def test_timeout_names_the_chunk_and_leaves_no_file(voice, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "late.wav"
    result = run("speak", "--voice-id", voice, "--text", "The first sentence. The second sentence.",
                 "--split-max-chars", "20",
                 "--timeout", "0.000001", "--out", str(out))
    assert result.exit_code == 6
    assert "chunk 1/2" in result.stderr and "hint:" in result.stderr
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--text", "   "], "nothing to speak"),
    (["--text", "hi", "--language", "Klingon"], "unsupported language"),
    (["--text", "hi", "--out", "x.aac"], "extension"),
    (["--voice-id", "nobody", "--text", "hi"], "does not exist"),
    (["--voice-id", "../../etc", "--text", "hi"], "invalid voice id"),
])
def test_bad_input_gives_exit_2_a_hint_and_no_file(voice, tmp_path, monkeypatch, args, message):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    monkeypatch.chdir(out_dir)
    base = ["speak"] + ([] if "--voice-id" in args else ["--voice-id", voice])
    full = base + args + ([] if "--out" in args else ["--out", "x.wav"])
    result = run(*full)
    assert result.exit_code == 2
    assert message in result.stderr and "hint:" in result.stderr
    assert list(out_dir.iterdir()) == []


def test_too_long_text_is_rejected(voice, tmp_path, monkeypatch):
    monkeypatch.setenv("QTTS_MAX_TEXT_CHARS", "50")
    result = run("speak", "--voice-id", voice, "--text", "x" * 51, "--out", str(tmp_path / "x.wav"))
    assert result.exit_code == 2 and "limit is 50" in result.stderr


def test_batch_size_reaches_the_memory_pre_check(voice, tmp_path, monkeypatch):
    """4 chunks at once need ~1.5 GiB more than 1 (engine.memory): with 3 GiB available the
    default batch is refused with the hint, and --batch-size 1 (the hint) then fits."""
    monkeypatch.setenv("QTTS_MEMORY_LIMIT_BYTES", str(3 * 1024**3))
    refused = run("speak", "--voice-id", voice, "--text", "Hello.", "--out", str(tmp_path / "a.wav"))
    assert refused.exit_code == 4 and "--batch-size 1" in refused.stderr
    fits = run("speak", "--voice-id", voice, "--text", "Hello.", "--batch-size", "1", "--max-frames", "4",
               "--out", str(tmp_path / "b.wav"))
    assert fits.exit_code == 0, fits.stderr


def test_quiet_prints_nothing_on_stderr(voice, tmp_path):
    result = run("speak", "--voice-id", voice, "--text", "Hello.", "--max-frames", "4", "--quiet",
                 "--out", str(tmp_path / "q.wav"))
    assert result.exit_code == 0 and result.stderr == "" and (tmp_path / "q.wav").stat().st_size > 0


def test_a_cap_the_user_set_is_not_a_runaway(tiny_env, reference_clip, tmp_path) -> None:
    """Random weights run every chunk to its cap: with --max-frames given, that is where the
    user bounded it, and it is not generated again."""
    from tests.integration.helpers import run_json

    summary = run_json("speak", "--ref-audio", str(reference_clip), "--ref-text", "Hello there.",
                       "--text", "Hello there, how are you today?", "--max-frames", "12", "--seed", "1",
                       "--out", str(tmp_path / "capped.wav"))
    assert [(c["frames"], c["retried"]) for c in summary["chunks"]] == [(12, False)]
