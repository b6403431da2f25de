"""The CLI boundary: every error category maps to a message, a hint and an exit code."""

import pytest
from click.testing import CliRunner

from qtts import errors
from qtts.cli.main import cli
from qtts.errors import BadInput, DependencyProblem, DiskFull, MemoryShortage, ModelUnavailable, QttsError, WorkerDied


@pytest.mark.parametrize("error, code", [
    (BadInput("bad", hint="fix it"), 2),
    (ModelUnavailable("missing", hint="pull it"), 3),
    (MemoryShortage("small", hint="use 0.6b"), 4),
    (DependencyProblem("broken", hint="reinstall"), 5),
    (DiskFull("full", hint="free space"), 9),
    (WorkerDied("died", hint="shorter"), 10),
])
def test_errors_print_message_and_hint_without_traceback(monkeypatch, error, code):
    import qtts.voices

    def boom(self):
        raise error

    monkeypatch.setattr(qtts.voices.VoiceLibrary, "list", boom)
    result = CliRunner().invoke(cli, ["clone", "list"])
    assert result.exit_code == code == errors.exit_code_for(error.category)
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

    code = ("import sys; from qtts.cli.main import cli; "
            "assert 'torch' not in sys.modules and 'qwen_tts' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_error_class_has_its_own_category_and_round_trips_through_the_http_client_table():
    classes = errors._all_classes()
    categories = [cls.category for cls in classes]
    assert len(categories) == len(set(categories))
    for cls in classes:
        rebuilt = errors.from_category(cls.category, "m", "h", cls.http_status)
        assert type(rebuilt) is cls and rebuilt.hint == "h"
        assert cls is QttsError or cls.exit_code != 1  # only an unknown error (a bug) exits 1
    assert type(errors.from_category("unheard-of", "m", http_status=418)) is BadInput


def test_a_full_disk_is_its_own_error():
    import errno

    assert isinstance(errors.os_error(OSError(errno.ENOSPC, "No space left on device"), "x"), DiskFull)
    assert type(errors.os_error(OSError(errno.EACCES, "Permission denied"), "x")) is BadInput
