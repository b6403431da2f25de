from pathlib import Path

import pytest

from qtts.errors import BadInput
from qtts.settings import DEFAULT_MODEL_ID, Settings


def test_defaults_are_cpu_safe(tmp_path):
    settings = Settings.resolve({}, environ={"QTTS_HOME": str(tmp_path)})
    assert settings.model_id == DEFAULT_MODEL_ID
    assert settings.precision == "int8"
    assert settings.decoder_precision == "fp32"
    assert settings.attn_implementation == "sdpa"
    assert settings.low_cpu_mem_usage is True
    assert settings.memory_check is True


def test_flag_beats_env_beats_file_beats_default(tmp_path):
    (tmp_path / "config.toml").write_text('model_id = "from-file"\nsplit_max_chars = 120\ntimeout_s = 5\n')
    environ = {"QTTS_HOME": str(tmp_path), "QTTS_MODEL_ID": "from-env", "QTTS_SPLIT_MAX_CHARS": "150"}
    settings = Settings.resolve({"model_id": "from-flag", "split_max_chars": None}, environ=environ)
    assert settings.model_id == "from-flag"
    assert settings.split_max_chars == 150  # env, since the flag was not given
    assert settings.timeout_s == 5.0  # file
    assert settings.port == 8000  # default


def test_config_file_can_be_named_by_env(tmp_path):
    config = tmp_path / "elsewhere.toml"
    config.write_text('precision = "bf16"\n')
    settings = Settings.resolve({}, environ={"QTTS_HOME": str(tmp_path), "QTTS_CONFIG": str(config)})
    assert settings.precision == "bf16"


@pytest.mark.parametrize("environ, fragment", [
    ({"QTTS_CPU_THREADS": "many"}, "cpu_threads"),
    ({"QTTS_MEMORY_CHECK": "perhaps"}, "memory_check"),
    ({"QTTS_PRECISION": "int3"}, "precision"),
])
def test_invalid_values_are_bad_input_with_a_hint(tmp_path, environ, fragment):
    with pytest.raises(BadInput) as info:
        Settings.resolve({}, environ={"QTTS_HOME": str(tmp_path), **environ})
    assert fragment in info.value.message
    assert info.value.hint


def test_unknown_config_key_is_reported(tmp_path):
    (tmp_path / "config.toml").write_text("modle_id = 'typo'\n")
    with pytest.raises(BadInput, match="modle_id"):
        Settings.resolve({}, environ={"QTTS_HOME": str(tmp_path)})


def test_broken_toml_is_reported(tmp_path):
    (tmp_path / "config.toml").write_text("model_id = \n")
    with pytest.raises(BadInput, match="not valid TOML"):
        Settings.resolve({}, environ={"QTTS_HOME": str(tmp_path)})


def test_home_flag_moves_the_voice_library(tmp_path):
    settings = Settings.resolve({"home": str(tmp_path / "h")}, environ={})
    assert settings.voices_dir == Path(tmp_path / "h" / "voices")


def test_a_request_takes_what_was_given_over_the_settings():
    from qtts.request import VoiceSource, build_request

    settings = Settings.resolve({"language": "German", "split_max_chars": 80, "batch_size": 2}, environ={})
    request = build_request(settings, "Hallo.", VoiceSource(voice_id="v"), language=None, split_max_chars=None,
                            seed=5)
    assert (request.language, request.split_max_chars, request.batch_size, request.seed) == ("German", 80, 2, 5)
    assert build_request(settings, "Hi.", VoiceSource(voice_id="v"), language="English").language == "English"
