"""The CLI boundary: every error category maps to a message, a hint and an exit code."""

import pytest
from click.testing import CliRunner

from qtts.cli.main import EXIT_CODES, cli
from qtts.errors import BadInput, DependencyProblem, MemoryShortage, ModelUnavailable, QttsError


@pytest.mark.parametrize("error, code", [
    (BadInput("bad", hint="fix it"), 2),
    (ModelUnavailable("missing", hint="pull it"), 3),
    (MemoryShortage("small", hint="use 0.6b"), 4),
    (DependencyProblem("broken", hint="reinstall"), 5),
])
def test_errors_print_message_and_hint_without_traceback(monkeypatch, error, code):
    import qtts.voices

    def boom(self):
        raise error

    monkeypatch.setattr(qtts.voices.VoiceLibrary, "list", boom)
    result = CliRunner().invoke(cli, ["clone", "list"])
    assert result.exit_code == code == EXIT_CODES[error.category]
    assert f"error: {error.message}" in result.stderr
    assert f"hint: {error.hint}" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_flag_shows_the_exception(monkeypatch):
    import qtts.voices

    monkeypatch.setattr(qtts.voices.VoiceLibrary, "list", lambda self: (_ for _ in ()).throw(QttsError("x")))
    result = CliRunner().invoke(cli, ["--debug", "clone", "list"])
    assert isinstance(result.exception, QttsError)


def test_help_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys; from qtts.cli.main import cli; assert 'torch' not in sys.modules and 'qwen_tts' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
