"""CLI refusals that need no model: offline pull, unsafe bind, empty model cache."""

import json

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
    assert result.exit_code == 0 and json.loads(result.stdout) == {"models": [], "quantized_weights": []}


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


def test_progress_is_a_live_bar_on_a_terminal_and_lines_otherwise():
    import io

    from qtts.cli.progress import SynthesisProgress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    live = SynthesisProgress(stream=terminal)
    for frames in (1, 5, 9):
        live.frames(0, 3, frames, 40)
    live.message("chunk 1/3: 0.72 s of audio in 3.00 s")
    live.frames(1, 3, 2, 30)
    live.close()
    shown = terminal.getvalue()
    assert "chunk 1/3" in shown and "9/40 frames" in shown and "chunk 2/3" in shown and "s left" in shown

    piped = io.StringIO()
    plain = SynthesisProgress(stream=piped)
    plain.frames(0, 1, 3, 40)
    assert piped.getvalue() == ""  # no bar when not a terminal: only the chunk lines
    quiet = SynthesisProgress(quiet=True, stream=Terminal())
    quiet.frames(0, 1, 3, 40)
    quiet.message("chunk 1/1: done")
    assert quiet.stream.getvalue() == ""
