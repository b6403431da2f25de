"""CLI refusals that need no model: offline pull, unsafe bind, empty model cache."""

from click.testing import CliRunner

from qtts.cli.main import cli


def test_pull_offline_is_a_model_error_with_a_hint(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = CliRunner().invoke(cli, ["models", "pull", "0.6b"])
    assert result.exit_code == 3
    assert "could not download Qwen/Qwen3-TTS-12Hz-0.6B-Base" in result.stderr and "hint:" in result.stderr


def test_models_list_on_an_empty_cache(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))  # read when scanning
    result = CliRunner().invoke(cli, ["models", "list", "--json"])
    assert result.exit_code == 0 and result.stdout.strip() == "[]"


def test_serve_refuses_a_public_bind_without_an_api_key():
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "without an API key" in result.stderr and "--api-key" in result.stderr


def test_build_random_refuses_to_overwrite(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["models", "build-random", "--preset", "tiny", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--force" in result.stderr
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"
