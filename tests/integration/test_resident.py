"""The resident engine through the real CLI: same audio and errors as in-process, streaming,
the engine commands, batch, idle exit (separate processes, the tiny checkpoint)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.integration.resident_helpers import EngineShell, alive, wait_for

TEXT = "Hello there, how are you today? This is a test."
GREEDY = ("--greedy", "--seed", "3", "--max-frames", "24")


def test_engine_serves_the_same_audio_as_in_process(
    engine_shell: EngineShell, engine_voice: str, tmp_path: Path
) -> None:
    pid = engine_shell.engine_pid()
    first = engine_shell.json(
        "speak", "--voice-id", engine_voice, "--text", TEXT, *GREEDY, "--out", str(tmp_path / "a.wav")
    )
    assert first["engine"]["served"] and first["engine"]["warm"] and not first["engine"]["started_now"]
    assert first["engine"]["pid"] == pid and first["engine"]["startup_saved_s"] > 0
    alone = engine_shell.json(
        "speak", "--voice-id", engine_voice, "--text", TEXT, *GREEDY, "--no-engine", "--out", str(tmp_path / "b.wav")
    )
    assert alone["engine"] == {"served": False}
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    assert [c["frames"] for c in first["chunks"]] == [c["frames"] for c in alone["chunks"]]

    # stdout, whole and streamed, byte for byte as in-process
    for extra in ((), ("--stream", "--format", "pcm")):
        served = engine_shell.run("speak", "--voice-id", engine_voice, "--text", TEXT, *GREEDY, *extra, "--out", "-")
        local = engine_shell.run(
            "speak", "--voice-id", engine_voice, "--text", TEXT, *GREEDY, *extra, "--out", "-", "--no-engine"
        )
        assert served.returncode == 0 and local.returncode == 0, served.stderr.decode() + local.stderr.decode()
        assert len(served.stdout) > 10_000 and served.stdout == local.stdout
        assert extra or local.stdout[:4] == b"RIFF"  # nothing but audio on stdout (no build chatter)
        assert f"engine pid {pid}".encode() in served.stderr
    assert engine_shell.engine_pid() == pid  # one engine served them all


def test_errors_keep_their_class_exit_code_and_hint(
    engine_shell: EngineShell, engine_voice: str, tmp_path: Path
) -> None:
    out = tmp_path / "x.wav"
    slow = ("--text", TEXT * 4, "--max-frames", "400", "--seed", "1", "--timeout", "0.01", "--out", str(out))
    timeout = engine_shell.run("speak", "--voice-id", engine_voice, *slow)
    local = engine_shell.run("speak", "--voice-id", engine_voice, *slow, "--no-engine")
    assert timeout.returncode == local.returncode == 6, timeout.stderr.decode() + local.stderr.decode()
    for result in (timeout, local):
        assert b"did not finish within 0.01 s" in result.stderr and b"hint: raise --timeout" in result.stderr
    assert not out.exists()
    # An error raised in the engine itself (not by the CLI's own checks): a model that does not fit.
    tight = engine_shell.run(
        "speak", "--voice-id", engine_voice, "--text", "Hi there.", "--out", str(out), QTTS_MEMORY_LIMIT_BYTES="1000000"
    )
    assert tight.returncode == 4, tight.stderr.decode()
    assert b"replacing the qtts engine" in tight.stderr and b"error: not enough memory" in tight.stderr
    assert b"hint: use --model-id" in tight.stderr and not out.exists()


def test_engine_commands_and_batch(engine_shell: EngineShell, engine_voice: str, tmp_path: Path) -> None:
    status = engine_shell.run("engine", "status", "--json")
    state = json.loads(status.stdout)
    assert status.returncode == 0 and state["running"] and state["pid"] == engine_shell.engine_pid()
    assert [m["model_id"] for m in state["models"]] and state["rss_bytes"] > 0 and state["idle_exit_s"] == 600
    human = engine_shell.run("engine", "status").stdout.decode()
    assert f"pid {state['pid']}" in human and "GiB resident" in human

    lines = tmp_path / "in.txt"
    lines.write_text("First line to speak.\nSecond line to speak.\n")
    batch = engine_shell.run(
        "batch",
        "--input",
        str(lines),
        "--out-dir",
        str(tmp_path / "out"),
        "--voice-id",
        engine_voice,
        "--max-frames",
        "12",
        "--json",
    )
    assert batch.returncode == 0, batch.stderr.decode()
    assert json.loads(batch.stdout)["ok"] == 2 and b"starting the qtts engine" not in batch.stderr
    assert len(list((tmp_path / "out").glob("*.wav"))) == 2

    pid = engine_shell.engine_pid()
    stop = engine_shell.run("engine", "stop")
    assert stop.returncode == 0 and f"pid {pid}".encode() in stop.stderr
    assert wait_for(lambda: not alive(pid), 10) and not engine_shell.place.socket.exists()
    assert engine_shell.run("engine", "status").returncode == 1
    started = engine_shell.run("engine", "start")
    assert started.returncode == 0 and b"started" in started.stderr and engine_shell.engine_pid() not in (None, pid)


def test_idle_engine_exits_by_itself(engine_shell: EngineShell, engine_voice: str, tmp_path: Path) -> None:
    engine_shell.stop()
    result = engine_shell.hello(engine_voice, tmp_path / "a.wav", QTTS_ENGINE_IDLE_S="2")
    assert result.returncode == 0, result.stderr.decode()
    pid = engine_shell.engine_pid()
    assert pid and wait_for(lambda: not alive(pid), 30)
    assert not engine_shell.place.socket.exists() and not engine_shell.place.info.exists()


def test_engine_directory_is_private(engine_shell: EngineShell, engine_voice: str) -> None:
    place = engine_shell.place
    assert place.directory.stat().st_mode & 0o777 == 0o700
    assert place.socket.stat().st_mode & 0o777 == 0o600
    os.chmod(place.directory, 0o755)
    try:
        result = engine_shell.run("speak", "--voice-id", engine_voice, "--text", "Hi.", "--out", "-")
        assert result.returncode == 2 and b"is not a private directory" in result.stderr
    finally:
        os.chmod(place.directory, 0o700)


def test_a_differing_busy_engine_is_refused_not_reused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from qtts.errors import ServerUnavailable
    from qtts.resident import launch
    from qtts.resident.place import build_id, fingerprint
    from qtts.settings import Settings

    settings = Settings.resolve({"home": str(tmp_path)})
    assert launch.mismatch(settings, {"build": build_id(), "settings": fingerprint(settings)}) is None
    assert "another qtts build" in launch.mismatch(settings, {"build": "0.0.1+old", "settings": fingerprint(settings)})
    other = {**fingerprint(settings), "cpu_threads": 7}
    assert "cpu_threads 7 -> 0" in launch.mismatch(settings, {"build": build_id(), "settings": other})
    monkeypatch.setattr(launch, "probe", lambda place: {"pid": 1, "build": "0.0.1+old", "active": 1})
    with pytest.raises(ServerUnavailable, match="busy and differs: another qtts build"):
        launch.connect(settings, say=lambda _m: None)
