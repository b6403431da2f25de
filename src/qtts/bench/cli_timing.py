"""``qtts bench --cli``: the real ``qtts speak`` process, timed as a user meets it.

Each figure is a whole process started from outside (``python -m qtts``): cold without the
engine (every call imports and loads), cold with the engine (this call starts it), warm
(the engine resident), and ``--stream --out -`` to the first audio byte on stdout, cold
and warm.  The breakdown comes from the engine's status (start, import, load) and the
call's ``--json`` timings (voice, prefill, frames, decode, encode).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TEXT = "Hello there, how are you today? I hope you are well."
VOICE = "bench"


class _Shell:
    def __init__(self, home: Path, model: Path, threads: int) -> None:
        self.env = {**os.environ, "QTTS_HOME": str(home), "QTTS_MODEL_ID": str(model), "HF_HUB_OFFLINE": "1",
                    "QTTS_CPU_THREADS": str(threads)}
        self.env.pop("QTTS_ENGINE", None)

    def run(self, *args: str) -> tuple[float, subprocess.CompletedProcess]:
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "qtts", *args], env=self.env, capture_output=True, timeout=900)
        wall = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"qtts {' '.join(args)} failed: {result.stderr.decode()[-800:]}")
        return wall, result

    def first_byte(self, *args: str) -> tuple[float, float]:
        """(seconds to the first byte on stdout, seconds to the end)."""
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "qtts", *args], env=self.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        first = process.stdout.read(1)
        at = time.perf_counter() - started
        process.stdout.read()
        _, err = process.communicate(timeout=900)
        if process.returncode != 0 or not first:
            raise RuntimeError(f"qtts {' '.join(args)} failed: {err.decode()[-800:]}")
        return at, time.perf_counter() - started


def run_cli_bench(model_dir: Path, home: Path, threads: int, frames: int, runs: int,
                  say: Callable[[str], None]) -> dict[str, Any]:
    from qtts.bench.machine import describe
    from qtts.doctor import smoke_reference

    shell = _Shell(home, model_dir, threads)
    speak = ("speak", "--voice-id", VOICE, "--text", TEXT, "--max-frames", str(frames), "--seed", "1")
    shell.run("engine", "stop")
    if not (home / "voices" / VOICE).is_dir():
        clip = home / "bench-reference.wav"
        clip.parent.mkdir(parents=True, exist_ok=True)
        import soundfile as sf

        sf.write(clip, smoke_reference(4.0).samples, 24000)
        say("creating the bench voice (its prompt is then known, as a user's library voice is) ...")
        shell.run("clone", "create", "--voice-id", VOICE, "--ref-audio", str(clip), "--ref-text",
                  "Hello there, this is the voice of the benchmark speaking.", "--force")
        shell.run("engine", "stop")
    out = str(home / "bench-out.wav")
    report: dict[str, Any] = {"model": str(model_dir), "threads": threads, "frames": frames, "text": TEXT,
                              "machine": describe()}

    say("cold, without the engine (every call imports and loads) ...")
    report["cold_no_engine"] = _call(shell, [*speak, "--no-engine", "--json", "--out", out])
    say("cold, with the engine (this call starts it) ...")
    report["cold_engine"] = _call(shell, [*speak, "--json", "--out", out])
    status = json.loads(shell.run("engine", "status", "--json")[1].stdout)
    report["engine"] = {"boot_s": status["boot_s"], "import_s": status["import_s"],
                        "load_s": status["models"][0]["load_seconds"], "rss_gb": round(status["rss_bytes"] / 1e9, 2)}
    say(f"warm, {runs} calls with the engine resident ...")
    warm = [_call(shell, [*speak, "--json", "--out", out]) for _ in range(runs)]
    report["warm"] = _median_call(warm)
    say(f"warm --stream to the first audio byte on stdout, {runs} calls ...")
    firsts = [shell.first_byte(*speak, "--stream", "--format", "pcm", "--out", "-") for _ in range(runs)]
    report["warm_stream_first_byte_s"] = round(statistics.median(f for f, _ in firsts), 3)
    shell.run("engine", "stop")
    say("cold --stream to the first audio byte (the engine starts) ...")
    cold_first, _ = shell.first_byte(*speak, "--stream", "--format", "pcm", "--out", "-")
    report["cold_stream_first_byte_s"] = round(cold_first, 3)
    shell.run("engine", "stop")
    from qtts.bench.machine import read_bandwidth_gbs

    report["read_gbs"] = round(read_bandwidth_gbs(threads), 1)  # which machine, as it ran
    return report


def _call(shell: _Shell, args: list[str]) -> dict[str, Any]:
    wall, result = shell.run(*args)
    summary = json.loads(result.stdout)
    return {"wall_s": round(wall, 3), "synthesis_s": summary["elapsed_seconds"],
            "overhead_s": round(wall - summary["elapsed_seconds"], 3), "audio_s": summary["audio_seconds"],
            "load_s": summary["load_seconds"], "timings": summary.get("timings", {}),
            "engine": summary.get("engine", {})}


def _median_call(calls: list[dict[str, Any]]) -> dict[str, Any]:
    middle = sorted(calls, key=lambda c: c["wall_s"])[len(calls) // 2]
    return {**middle, "walls_s": [c["wall_s"] for c in calls]}


def format_cli(report: dict[str, Any]) -> str:
    machine = report["machine"]
    engine = report["engine"]
    lines = [f"qtts speak as a user runs it: {machine.get('cpu')} ({', '.join(machine.get('isa', []))}; read "
             f"{report.get('read_gbs', 0):.1f} GB/s), {report['threads']} threads, {report['frames']} frames of "
             f"{Path(report['model']).name}",
             "", "| call | wall s | synthesis s | overhead s | voice | prefill | frames | decode | encode |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, key in (("cold, --no-engine", "cold_no_engine"), ("cold, engine starts", "cold_engine"),
                       ("warm, engine resident (median)", "warm")):
        call = report[key]
        t = call["timings"]
        lines.append(f"| {label} | {call['wall_s']:.2f} | {call['synthesis_s']:.2f} | {call['overhead_s']:.2f} | "
                     + " | ".join(f"{t.get(k, 0):.2f}" for k in ("voice_s", "prefill_s", "frames_s", "decode_s",
                                                                  "encode_s")) + " |")
    lines += ["", f"engine start: python + qtts {engine['boot_s']:.2f} s, import torch + qwen_tts "
              f"{engine['import_s']:.2f} s, load {engine['load_s']:.2f} s; resident {engine['rss_gb']:.2f} GB",
              f"--stream, first audio byte on stdout: warm {report['warm_stream_first_byte_s']:.2f} s, "
              f"cold {report['cold_stream_first_byte_s']:.2f} s"]
    return "\n".join(lines)
