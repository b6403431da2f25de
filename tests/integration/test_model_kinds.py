"""CustomVoice and VoiceDesign models through real qwen_tts on tiny checkpoints: the CLI,
design-then-clone, the model-kind errors, and codes identical to upstream's own methods."""

import json
import shutil
from pathlib import Path

import pytest

from tests.integration.helpers import decode, expected_samples, run, run_json


@pytest.fixture()
def small_custom_model(tiny_custom_model: Path, tmp_path: Path) -> Path:
    """The tiny CustomVoice checkpoint with the 0.6B size tag (which upstream gives no instructions)."""
    copy = tmp_path / "tiny-custom-0b6"
    shutil.copytree(tiny_custom_model, copy)
    config = json.loads((copy / "config.json").read_text())
    config["tts_model_size"] = "0b6"
    (copy / "config.json").write_text(json.dumps(config))
    return copy


@pytest.mark.parametrize("fmt", ["wav", "mp3"])
def test_speak_as_a_preset_speaker_with_a_style(tiny_custom_model, tmp_path, fmt):
    out = tmp_path / f"ryan.{fmt}"
    summary = run_json("speak", "--model-id", str(tiny_custom_model), "--speaker", "Ryan", "--instruct", "cheerful",
                       "--text", "Hello there. How are you today?", "--split-max-chars", "20", "--seed", "2",
                       "--out", str(out))
    assert len(summary["chunks"]) == 2 and all(c["frames"] > 0 for c in summary["chunks"])
    rate, samples = decode(out.read_bytes())
    assert rate == 24000
    assert abs(samples - expected_samples(summary)) <= (0 if fmt == "wav" else 2000)


def test_speak_in_a_described_voice_streams(tiny_design_model):
    result = run("speak", "--model-id", str(tiny_design_model), "--instruct", "a calm, low-pitched older man",
                 "--text", "Hello there.", "--seed", "1", "--max-frames", "10", "--out", "-", "--stream",
                 "--format", "pcm")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout_bytes) > 0 and len(result.stdout_bytes) % 2 == 0
    assert "first audio after" in result.stderr


def test_the_same_seed_gives_the_same_audio_for_a_preset_speaker(tiny_custom_model, tmp_path):
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.wav"
        run_json("speak", "--model-id", str(tiny_custom_model), "--speaker", "vivian", "--text", "Same words.",
                 "--seed", "7", "--out", str(out))
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_speakers_are_listed_with_their_native_language(tiny_custom_model):
    listing = run_json("speakers", "--model-id", str(tiny_custom_model))
    names = {row["speaker"]: row["native_language"] for row in listing["speakers"]}
    assert set(names) == {"vivian", "serena", "uncle_fu", "dylan", "eric", "ryan", "aiden", "ono_anna", "sohee"}
    assert names["ryan"] == "English" and names["eric"] == "Chinese (Sichuan dialect)"
    assert listing["takes_instructions"] is True


@pytest.mark.parametrize("case", ["clone_on_custom", "speaker_on_base", "instruct_on_small_custom",
                                  "instruct_on_base", "voice_on_design", "speaker_on_design", "speakers_of_base"])
def test_requests_that_do_not_fit_the_model_say_which_model_to_use(case, tiny_model, tiny_custom_model,
                                                                  tiny_design_model, small_custom_model,
                                                                  reference_clip, tmp_path):
    out = str(tmp_path / "x.wav")
    args, hint = {
        "clone_on_custom": (["speak", "--model-id", str(tiny_custom_model), "--ref-audio", str(reference_clip),
                             "--ref-text", "Hi.", "--text", "Hi.", "--out", out], "--model-id 1.7b"),
        "speaker_on_base": (["speak", "--model-id", str(tiny_model), "--speaker", "ryan", "--text", "Hi.",
                             "--out", out], "1.7b-custom"),
        "instruct_on_small_custom": (["speak", "--model-id", str(small_custom_model), "--speaker", "ryan",
                                      "--instruct", "happy", "--text", "Hi.", "--out", out], "1.7b-custom"),
        "instruct_on_base": (["speak", "--model-id", str(tiny_model), "--ref-audio", str(reference_clip),
                              "--ref-text", "Hi.", "--instruct", "happy", "--text", "Hi.", "--out", out],
                             "1.7b-design"),
        "voice_on_design": (["speak", "--model-id", str(tiny_design_model), "--voice-id", "nobody", "--text", "Hi.",
                             "--out", out], "--model-id 1.7b"),
        "speaker_on_design": (["speak", "--model-id", str(tiny_design_model), "--speaker", "ryan",
                               "--instruct", "calm", "--text", "Hi.", "--out", out], "1.7b-custom"),
        "speakers_of_base": (["speakers", "--model-id", str(tiny_model)], "1.7b-custom"),
    }[case]
    result = run(*args)
    assert result.exit_code == 2, result.stderr
    assert "error:" in result.stderr and hint in result.stderr and "Traceback" not in result.stderr
    assert not Path(out).exists()


def test_unknown_or_missing_speaker_lists_the_speakers(tiny_custom_model, tmp_path):
    for extra in (["--speaker", "alloy"], []):
        result = run("speak", "--model-id", str(tiny_custom_model), *extra, "--text", "Hi.",
                     "--out", str(tmp_path / "x.wav"))
        assert result.exit_code == 2 and "vivian" in result.stderr, result.stderr


def test_design_then_clone_keeps_the_voice(tiny_model, tiny_design_model, tmp_path):
    created = run_json("clone", "create", "--voice-id", "narrator", "--design", "a warm, slow storyteller",
                       "--model-id", str(tiny_design_model), "--seed", "1")
    assert created["description"] == "a warm, slow storyteller"
    assert created["ref_text"].startswith("Hello!") and created["duration_s"] >= 1.0
    assert created["families"] == []  # derived by the first Base model that speaks with it
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.wav"
        run_json("speak", "--model-id", str(tiny_model), "--voice-id", "narrator", "--text", "Once upon a time.",
                 "--seed", "5", "--out", str(out))
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    shown = run_json("clone", "show", "narrator")
    assert shown["families"] and shown["created_with"] == str(tiny_design_model)
    again = run("clone", "create", "--voice-id", "narrator", "--design", "another voice",
                "--model-id", str(tiny_design_model))
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_design_refuses_a_base_model_and_clip_flags(tiny_model, reference_clip):
    result = run("clone", "create", "--voice-id", "x", "--design", "a voice", "--model-id", str(tiny_model))
    assert result.exit_code == 2 and "1.7b-design" in result.stderr, result.stderr
    result = run("clone", "create", "--voice-id", "x", "--design", "a voice", "--ref-audio", str(reference_clip))
    assert result.exit_code == 2 and "--design makes its own reference clip" in result.stderr


@pytest.mark.parametrize("kind", ["custom", "design"])
def test_fp32_codes_are_identical_to_upstreams_methods(kind, tiny_custom_model, tiny_design_model):
    """The lean loops, on the inputs built as upstream builds them, against upstream's own
    ``generate_custom_voice`` / ``generate_voice_design`` under greedy decoding."""
    import torch

    from qtts.engine import upstream
    from qtts.engine.core import Engine
    from qtts.engine.prompts import DesignedVoice, SpeakerVoice
    from qtts.engine.upstream import calls as generation
    from qtts.settings import Settings

    path = tiny_custom_model if kind == "custom" else tiny_design_model
    engine = Engine.load(Settings.resolve({"model_id": str(path), "precision": "fp32"}, environ={}))
    assert engine.patches.patches["talker loop"] == 1
    reference = upstream.import_qwen_tts().Qwen3TTSModel.from_pretrained(str(path), device_map="cpu",
                                                                        dtype=torch.float32)
    captured = []
    decode = reference.model.speech_tokenizer.decode
    reference.model.speech_tokenizer.decode = lambda items: (captured.extend(i["audio_codes"] for i in items),
                                                             decode(items))[1]
    greedy = {"do_sample": False, "subtalker_dosample": False, "max_new_tokens": 12}
    texts = ["Hello world.", "A second, longer sentence to speak."]
    if kind == "custom":
        voice = SpeakerVoice("dylan", "speak slowly")  # a dialect speaker: the dialect's language id
        reference.generate_custom_voice(texts, speaker="dylan", language="Chinese", instruct="speak slowly", **greedy)
    else:
        voice = DesignedVoice("a bright young woman")
        reference.generate_voice_design(texts, instruct="a bright young woman", language="Chinese", **greedy)
    ours = generation.generate(engine._tts, texts, "Chinese", voice, **greedy)
    assert len(ours) == len(captured) == 2
    for got, expected in zip(ours, captured):
        assert got.shape[0] > 0
        assert torch.equal(got, expected)


def test_int8_fast_path_covers_every_kind(tiny_custom_model, tiny_design_model):
    from qtts.engine.core import Engine, SynthesisOptions
    from qtts.engine.prompts import DesignedVoice, SpeakerVoice
    from qtts.settings import Settings

    for path, voice in ((tiny_custom_model, SpeakerVoice("sohee", "whispering")),
                        (tiny_design_model, DesignedVoice("a deep voice"))):
        engine = Engine.load(Settings.resolve({"model_id": str(path)}, environ={}))
        assert engine.patches.patches["talker linears quantized"] > 0
        assert engine.patches.patches["code predictor linears quantized"] > 0
        result = engine.synthesize("Hello there. And more.", voice,
                                   SynthesisOptions(seed=0, max_frames=6, split_max_chars=20, batch_size=2))
        assert len(result.chunks) == 2 and result.audio.duration_s > 0


@pytest.mark.parametrize("kind", ["CustomVoice", "VoiceDesign"])
def test_doctor_shows_the_kind_and_smoke_tests_it(kind, tiny_custom_model, tiny_design_model, monkeypatch):
    path = tiny_custom_model if kind == "CustomVoice" else tiny_design_model
    monkeypatch.setenv("QTTS_MODEL_ID", str(path))
    result = run("doctor", "--run-smoke", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    model = next(c for c in report["checks"] if c["name"] == "model")
    assert f"({kind}" in model["detail"]
    assert report["smoke"]["audio_seconds"] > 0


def test_batch_lines_name_preset_speakers_on_a_custom_voice_model(tiny_custom_model, tmp_path):
    lines = tmp_path / "lines.jsonl"
    lines.write_text('{"id": "a", "text": "Hello there.", "voice": "ryan"}\n'
                     '{"id": "b", "text": "And again.", "voice": "sohee"}\n'
                     '{"id": "c", "text": "Nobody.", "voice": "alloy"}\n')
    result = run("batch", "--input", str(lines), "--out-dir", str(tmp_path / "out"), "--model-id",
                 str(tiny_custom_model),
                 "--max-frames", "6", "--seed", "1")
    assert result.exit_code == 1  # one line names no speaker of this model
    assert (tmp_path / "out" / "a.wav").is_file() and (tmp_path / "out" / "b.wav").is_file()
    records = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    failed = [r for r in records if r.get("status") != "ok"]
    assert [r["id"] for r in failed] == ["c"] and "no speaker 'alloy'" in json.dumps(failed)
