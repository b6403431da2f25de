"""Playing audio on the default output device as it is generated (``qtts speak --play``).

qtts hands 16-bit PCM to the platform's own player rather than linking an audio library:
PulseAudio's ``paplay`` (also served by PipeWire), PipeWire's ``pw-play``, ALSA's ``aplay``,
or ffmpeg's ``ffplay``, each reading raw samples from a pipe as they come.  macOS's
``afplay`` reads only files, so there the audio is played once it is complete (ffplay, from
Homebrew's ffmpeg, streams).  ``QTTS_PLAYER`` names one of them to skip the search.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from qtts.errors import DependencyProblem


def _commands(rate: int) -> dict[str, list[str]]:
    return {
        "paplay": ["paplay", "--raw", "--format=s16le", f"--rate={rate}", "--channels=1"],
        "pw-play": ["pw-play", "--format", "s16", "--rate", str(rate), "--channels", "1", "-"],
        "aplay": ["aplay", "-q", "-t", "raw", "-f", "S16_LE", "-r", str(rate), "-c", "1"],
        "ffplay": [
            "ffplay",
            "-nodisp",
            "-autoexit",
            "-loglevel",
            "error",
            "-f",
            "s16le",
            "-ar",
            str(rate),
            "-ch_layout",
            "mono",
            "-i",
            "-",
        ],
        "afplay": ["afplay"],  # a file, at the end
    }


class Player:
    """``write(pcm)`` as audio comes, ``close()`` waits until it has been played."""

    def __init__(self, name: str, command: list[str], rate: int) -> None:
        self.name = name
        self.rate = rate
        self._command = command
        self._pending = bytearray()
        self._process: subprocess.Popen | None = None
        if name != "afplay":
            self._process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )

    def write(self, pcm: bytes) -> None:
        if self._process is None:
            self._pending += pcm
            return
        try:
            self._process.stdin.write(pcm)
            self._process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise self._failed() from exc

    def close(self) -> None:
        if self._process is None:
            self._play_file()
            return
        try:
            self._process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        if self._process.wait() != 0:
            raise self._failed()

    def abort(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def _play_file(self) -> None:
        import numpy as np

        from qtts import audio as audio_mod

        samples = np.frombuffer(bytes(self._pending), dtype="<i2").astype(np.float32) / 32768.0
        with tempfile.TemporaryDirectory(prefix="qtts-play-") as tmp:
            path = Path(tmp) / "speech.wav"
            path.write_bytes(audio_mod.encode(audio_mod.Audio(samples, self.rate), "wav"))
            result = subprocess.run([*self._command, str(path)], stderr=subprocess.PIPE)
        if result.returncode != 0:
            raise DependencyProblem(
                f"{self.name} could not play the audio: {result.stderr.decode().strip()[:200]}",
                hint="check the output device, or write a file with --out",
            )

    def _failed(self) -> DependencyProblem:
        code = self._process.wait() if self._process is not None else None
        detail = self._process.stderr.read().decode(errors="replace").strip()[:200] if self._process else ""
        return DependencyProblem(
            f"{self.name} stopped playing (exit {code}){': ' + detail if detail else ''}",
            hint="check the output device (is a sound server running?), or write a file with "
            "--out; QTTS_PLAYER picks another player",
        )


def open_player(rate: int) -> Player:
    """The first player found (``QTTS_PLAYER`` first), started and waiting for samples."""
    commands = _commands(rate)
    wanted = os.environ.get("QTTS_PLAYER", "").strip()
    if wanted:
        if wanted not in commands:
            raise DependencyProblem(
                f"QTTS_PLAYER={wanted} is not a player qtts knows", hint=f"use one of: {', '.join(commands)}"
            )
        names = [wanted]
    else:
        names = list(commands)
    for name in names:
        if shutil.which(commands[name][0]):
            return Player(name, commands[name], rate)
    raise DependencyProblem(
        f"no audio player found ({', '.join(names)})",
        hint="install one (Debian: apt-get install pulseaudio-utils, or alsa-utils; macOS has "
        "afplay; ffplay comes with ffmpeg), or write a file with --out",
    )
