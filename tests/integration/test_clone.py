"""qtts clone through real qwen_tts on the tiny checkpoint."""

import json

from safetensors import safe_open

from tests.integration.helpers import run, run_json


def test_clone_icl_stores_prompt_meta_and_reference(tiny_env, reference_clip, isolated_home):
    voice = run_json("clone", "create", "--voice-id", "alice", "--ref-audio", str(reference_clip),
                     "--ref-text", "Hello there, this is Alice.")
    assert voice["mode"] == "icl"
    assert voice["duration_s"] == 3.5  # 3 s clip + 0.5 s appended silence
    directory = isolated_home / "voices" / "alice"
    (prompt_file,) = directory.glob("prompt.*.safetensors")
    with safe_open(str(prompt_file), "pt") as handle:
        assert set(handle.keys()) == {"speaker_embedding", "ref_code"}
        codes = handle.get_tensor("ref_code")
    assert codes.shape[1] == 16 and codes.shape[0] >= 40  # 12.5 frames/s over 3.5 s
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["ref_text"] == "Hello there, this is Alice."
    assert not list(directory.glob("*.pkl")) and not list(directory.glob("*.pt"))


def test_clone_x_vector_only_skips_the_codes(tiny_env, reference_clip, isolated_home):
    voice = run_json("clone", "create", "--voice-id", "bob", "--ref-audio", str(reference_clip), "--x-vector-only")
    assert voice["mode"] == "x_vector"
    (prompt_file,) = (isolated_home / "voices" / "bob").glob("prompt.*.safetensors")
    with safe_open(str(prompt_file), "pt") as handle:
        assert set(handle.keys()) == {"speaker_embedding"}


def test_list_show_delete(tiny_env, reference_clip):
    run("clone", "create", "--voice-id", "carol", "--ref-audio", str(reference_clip), "--x-vector-only")
    assert [v["voice_id"] for v in run_json("clone", "list")] == ["carol"]
    assert run_json("clone", "show", "carol")["mode"] == "x_vector"
    assert run("clone", "delete", "carol").exit_code == 0
    assert run("clone", "show", "carol").exit_code == 2


def test_existing_voice_is_not_overwritten_without_force(tiny_env, reference_clip):
    args = ("clone", "create", "--voice-id", "dave", "--ref-audio", str(reference_clip), "--x-vector-only")
    assert run(*args).exit_code == 0
    again = run(*args)
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert run(*args, "--force").exit_code == 0


def test_icl_without_transcript_fails_before_loading(tiny_env, reference_clip):
    result = run("clone", "create", "--voice-id", "eve", "--ref-audio", str(reference_clip))
    assert result.exit_code == 2 and "--ref-text" in result.stderr
    assert "loading" not in result.stderr


def test_bad_reference_files(tiny_env, tmp_path, isolated_home):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    for path in (empty, text, tmp_path / "missing.wav"):
        result = run("clone", "create", "--voice-id", "bad", "--ref-audio", str(path), "--x-vector-only")
        assert result.exit_code == 2, result.stderr
        assert "hint:" in result.stderr
    assert not (isolated_home / "voices" / "bad").exists()


def test_voice_from_another_model_family_is_rederived(tiny_env, reference_clip, isolated_home):
    from qtts.engine.core import Engine
    from qtts.settings import Settings
    from qtts.voices import VoiceLibrary

    run("clone", "create", "--voice-id", "frank", "--ref-audio", str(reference_clip), "--ref-text", "Hi there.")
    directory = isolated_home / "voices" / "frank"
    (prompt_file,) = directory.glob("prompt.*.safetensors")
    prompt_file.rename(directory / "prompt.0b6-spk1024.safetensors")  # as if made with 0.6B
    meta = json.loads((directory / "meta.json").read_text())
    meta["families"] = ["0b6-spk1024"]
    (directory / "meta.json").write_text(json.dumps(meta))

    settings = Settings.resolve({})
    engine = Engine.load(settings)
    prompt = VoiceLibrary(settings.voices_dir).prompt_for("frank", engine)
    assert prompt.family == engine.family
    assert prompt.ref_code is not None and prompt.ref_text == "Hi there."
    assert (directory / f"prompt.{engine.family}.safetensors").is_file()
    assert VoiceLibrary(settings.voices_dir).get("frank").families == ("0b6-spk1024", engine.family)
