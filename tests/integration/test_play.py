"""``qtts speak --play`` into a real PulseAudio null sink (no sound hardware needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.integration.helpers import run

RATE = 24000


@pytest.fixture()
def null_sink(tmp_path: Path):
    """A PulseAudio server of its own with one null sink; yields the environment that points
    players at it, and a recorder of the sink's monitor."""
    if shutil.which("pulseaudio") is None or shutil.which("parec") is None:
        pytest.fail("PulseAudio is not installed (install.sh installs pulseaudio and pulseaudio-utils on Debian)")
    socket = tmp_path / "pulse" / "native"
    socket.parent.mkdir()
    server = subprocess.Popen(
        [
            "pulseaudio",
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "--system=no",
            "-L",
            f"module-null-sink sink_name=qtts_null rate={RATE} channels=1",
            "-L",
            f"module-native-protocol-unix auth-anonymous=1 socket={socket}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(socket.parent)},
    )
    env = {"PULSE_SERVER": f"unix:{socket}"}
    deadline = time.monotonic() + 20
    while subprocess.run(["pactl", "info"], env={**os.environ, **env}, capture_output=True).returncode != 0:
        assert time.monotonic() < deadline and server.poll() is None, "PulseAudio did not start"
        time.sleep(0.1)
    yield env, tmp_path / "recorded.raw"
    server.kill()
    server.wait()


def test_play_sends_the_speech_to_the_output_device(null_sink, tiny_env, reference_clip, tmp_path, monkeypatch) -> None:
    env, recording = null_sink
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("QTTS_PLAYER", "paplay")
    args = [
        "--ref-audio",
        str(reference_clip),
        "--ref-text",
        "Hello there, this is me speaking.",
        "--text",
        "Hello there, how are you today?",
        "--max-frames",
        "30",
        "--greedy",
        "--seed",
        "1",
    ]
    recorder = subprocess.Popen(
        ["parec", "-d", "qtts_null.monitor", "--raw", "--format=s16le", f"--rate={RATE}", "--channels=1",
         "--latency-msec=20"],
        stdout=open(recording, "wb"),
        env={**os.environ, **env},
    )
    deadline = time.monotonic() + 10  # recording before anything plays
    while not subprocess.run(["pactl", "list", "short", "source-outputs"], env={**os.environ, **env},
                             capture_output=True).stdout.strip():
        assert time.monotonic() < deadline, "the recorder did not connect"
        time.sleep(0.05)
    out = tmp_path / "kept.flac"
    played = subprocess.run(
        [sys.executable, "-m", "qtts", "speak", *args, "--play", "--out", str(out), "--json"],
        capture_output=True,
        timeout=180,
    )
    time.sleep(1.0)  # the sink's last buffer reaches the monitor
    recorder.terminate()
    recorder.wait()
    assert played.returncode == 0, played.stderr.decode()
    assert b"played" in played.stderr and out.exists()
    import json

    summary = json.loads(played.stdout)
    assert summary["player"] == "paplay" and summary["format"] == "flac" and summary["engine"] == {"served": False}
    reference = run("speak", *args, "--stream", "--format", "pcm", "--out", "-").stdout_bytes
    expected = np.frombuffer(reference, dtype="<i2")
    heard = np.fromfile(recording, dtype="<i2")
    audible = lambda x: int((np.abs(x.astype(np.int32)) > 300).sum())  # noqa: E731
    assert audible(expected) > RATE // 4  # the tiny model's noise is loud
    assert audible(heard) >= 0.9 * audible(expected), (audible(heard), audible(expected))
    assert audible(heard) <= 1.1 * audible(expected)


def test_play_without_a_player_is_a_clear_error(tiny_env, reference_clip, monkeypatch) -> None:
    monkeypatch.setenv("QTTS_PLAYER", "aplay")
    monkeypatch.setenv("PATH", "/nonexistent")
    result = run(
        "speak", "--ref-audio", str(reference_clip), "--ref-text", "Hello there.", "--text", "Hi there.", "--play"
    )
    assert result.exit_code == 5
    assert "no audio player found (aplay)" in result.stderr and "hint: install one" in result.stderr


def test_play_refuses_stdout_and_no_output_is_refused(tiny_env) -> None:
    both = run("speak", "--voice-id", "x", "--text", "Hi.", "--play", "--out", "-")
    assert both.exit_code == 2 and "--play sends the audio to the speakers" in both.stderr
    none = run("speak", "--voice-id", "x", "--text", "Hi.")
    assert none.exit_code == 2 and "no output given" in none.stderr
    mismatch = run("speak", "--voice-id", "x", "--text", "Hi.", "--out", "x.wav", "--format", "mp3")
    assert mismatch.exit_code == 2 and "does not match the file name" in mismatch.stderr
