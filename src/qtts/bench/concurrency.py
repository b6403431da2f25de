"""``qtts bench --concurrency 1,4,8``: the real server under concurrent speech requests.

It starts ``qtts serve`` on a full-size random-weight checkpoint (in its own process, with
its own home and a cloned 4 s voice), then, for each level N, sends N streaming
``/v1/audio/speech`` requests of mixed lengths at once: even ones short (one sentence),
odd ones long (three sentences, one chunk each).  Random weights rarely end a chunk, so
every chunk is capped at ``frames`` frames and every level generates the same audio.  At
level 1 the same requests go one at a time.  Per level it reports the aggregate RTF (the
level's wall time over all its audio seconds), each request's time to first audio and total
time (median and worst), and the server's peak RSS so far; then the first audio of a short
request sent while a long one is speaking, against the short requests' alone.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SHORT = "The quick brown fox jumps over the lazy dog."
LONG = ("The first sentence of a longer request is here. The second sentence follows right after it. "
        "And the third sentence ends the request.")
VOICE_TEXT = "This is a short reference recording for the benchmark."


def run_concurrency(preset: str, checkpoint_dir: Path, threads: int, frames: int, levels: list[int],
                    say: Callable[[str], None]) -> dict[str, Any]:
    from qtts.bench import machine
    from qtts.bench.runner import ensure_checkpoint, run_in_subprocess

    model_dir = ensure_checkpoint(preset, checkpoint_dir, say)
    say("measuring this machine's read bandwidth and fp32 GEMM rate ...")
    limits = run_in_subprocess({"kind": "limits"}, threads)
    with _server(model_dir, threads, max(levels), say) as (url, pid):
        _create_voice(url)
        rows = []
        for level in levels:
            count = max(levels)
            say(f"{count} requests, {level} at a time ({frames} frames per chunk) ...")
            rows.append(_level(url, pid, level, count, frames))
        say("a short request arriving during a long one ...")
        during = _short_during_long(url, frames)
    report: dict[str, Any] = {"model": preset, "checkpoint": str(model_dir), "threads": threads, "frames": frames,
                              "machine": {**machine.describe(), **limits}, "levels": rows}
    one, most = rows[0], rows[-1]
    report["speedup_over_one_at_a_time"] = round(one["aggregate_rtf"] / most["aggregate_rtf"], 2)
    alone = one["short_first_audio_s"]["median"]
    report["short_first_audio_vs_alone"] = round(most["short_first_audio_s"]["worst"] / alone, 2) if alone else None
    report["short_during_long_first_audio_s"] = during
    report["short_during_long_vs_alone"] = round(during / alone, 2) if alone else None
    return report


def _short_during_long(url: str, frames: int) -> float:
    """The first-audio time of a short request sent once a long one is speaking."""
    import httpx

    speaking = threading.Event()

    def long_request() -> None:
        body = {"model": "tts-1", "voice": "bench", "input": LONG, "response_format": "pcm", "seed": 99,
                "max_frames": frames}
        with httpx.stream("POST", f"{url}/v1/audio/speech", json=body, timeout=3600) as response:
            for part in response.iter_bytes():
                if part:
                    speaking.set()
        speaking.set()

    thread = threading.Thread(target=long_request)
    thread.start()
    speaking.wait()
    short = _speak(url, SHORT, frames, seed=98)["first_audio_s"]
    thread.join()
    return short


def _level(url: str, pid: int, level: int, count: int, frames: int) -> dict[str, Any]:
    requests = [SHORT if i % 2 == 0 else LONG for i in range(count)]
    results: list[dict[str, Any] | None] = [None] * count
    batch_seen = [0]
    started = time.perf_counter()
    slots = threading.Semaphore(level)
    done = threading.Event()

    def watch() -> None:
        import httpx

        while not done.wait(0.5):
            try:
                batch_seen[0] = max(batch_seen[0], httpx.get(f"{url}/v1/batch", timeout=5).json()["active"])
            except Exception:  # the figure is informative only
                pass

    def send(index: int) -> None:
        with slots:
            results[index] = _speak(url, requests[index], frames, seed=index)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    workers = [threading.Thread(target=send, args=(i,)) for i in range(count)]
    for worker in workers:
        worker.start()
        if level == 1:
            worker.join()  # one at a time, in order
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - started
    done.set()
    rows = [r for r in results if r is not None]
    audio = sum(r["audio_s"] for r in rows)
    short = [r for i, r in enumerate(results) if r is not None and i % 2 == 0]
    return {
        "concurrency": level, "requests": count, "wall_s": round(wall, 2), "audio_s": round(audio, 2),
        "aggregate_rtf": round(wall / audio, 3) if audio else None,
        "first_audio_s": _spread([r["first_audio_s"] for r in rows]),
        "total_s": _spread([r["total_s"] for r in rows]),
        "short_first_audio_s": _spread([r["first_audio_s"] for r in short]),
        "largest_batch_seen": batch_seen[0],
        "peak_rss_gb": round(_peak_rss(pid) / 1e9, 2),
    }


def _speak(url: str, text: str, frames: int, seed: int) -> dict[str, Any]:
    import httpx

    body = {"model": "tts-1", "voice": "bench", "input": text, "response_format": "pcm", "seed": seed,
            "max_frames": frames}
    started = time.perf_counter()
    first = None
    size = 0
    with httpx.stream("POST", f"{url}/v1/audio/speech", json=body, timeout=3600) as response:
        response.raise_for_status()
        for part in response.iter_bytes():
            if part and first is None:
                first = time.perf_counter() - started
            size += len(part)
    total = time.perf_counter() - started
    return {"audio_s": size / 2 / 24000, "first_audio_s": round(first or total, 3), "total_s": round(total, 3)}


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "worst": round(max(values), 3)} if values else {}


def _peak_rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _create_voice(url: str) -> None:
    import httpx

    from qtts import audio as audio_mod
    from qtts.doctor import smoke_reference

    clip = audio_mod.encode(smoke_reference(4.0), "wav")
    response = httpx.post(f"{url}/v1/audio/voices", data={"voice_id": "bench", "ref_text": VOICE_TEXT},
                          files={"file": ("bench.wav", clip, "audio/wav")}, timeout=600)
    response.raise_for_status()


class _server:
    """``qtts serve`` in a child process with its own home; yields (url, pid)."""

    def __init__(self, model_dir: Path, threads: int, max_batch: int, say: Callable[[str], None]) -> None:
        self.model_dir, self.threads, self.max_batch, self.say = model_dir, threads, max_batch, say

    def __enter__(self) -> tuple[str, int]:
        import httpx

        self.home = tempfile.TemporaryDirectory(prefix="qtts-bench-serve-")
        port = free_port()
        env = {**os.environ, "QTTS_HOME": self.home.name, "OMP_NUM_THREADS": str(self.threads),
               "QTTS_CPU_THREADS": str(self.threads), "QTTS_MAX_BATCH": str(self.max_batch), "HF_HUB_OFFLINE": "1",
               "QTTS_MEMORY_CHECK": "0"}
        self.say(f"starting qtts serve on {self.model_dir} (max batch {self.max_batch}) ...")
        self.process = subprocess.Popen([sys.executable, "-m", "qtts", "serve", "--model-id", str(self.model_dir),
                                         "--port", str(port), "--no-worker"], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"qtts serve exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                ready = httpx.get(f"{url}/ready", timeout=2)
                if ready.status_code == 200:
                    return url, self.process.pid
                if ready.json().get("status") == "failed":
                    self.__exit__()
                    raise RuntimeError(f"qtts serve failed to load the model: {ready.json().get('error')}")
            except httpx.TransportError:
                pass
            time.sleep(1)
        raise RuntimeError("qtts serve did not become ready within 15 minutes")

    def __exit__(self, *_: Any) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.home.cleanup()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def format_levels(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [f"{report['model']} int8, {report['threads']} threads, {report['frames']} frames per chunk; "
             f"{machine['cpu']} ({', '.join(machine['isa'])}), read {machine['read_gbs']} GB/s",
             "concurrency | wall s | audio s | aggregate RTF | first audio s (median / worst) | "
             "total s (median / worst) | largest batch | peak RSS GB"]
    for row in report["levels"]:
        lines.append(f"{row['concurrency']:>11} | {row['wall_s']:>6} | {row['audio_s']:>7} | "
                     f"{row['aggregate_rtf']:>13} | "
                     f"{row['first_audio_s']['median']} / {row['first_audio_s']['worst']} | "
                     f"{row['total_s']['median']} / {row['total_s']['worst']} | {row['largest_batch_seen']} | "
                     f"{row['peak_rss_gb']}")
    lines.append(f"throughput at the highest level vs one at a time: {report['speedup_over_one_at_a_time']}x; "
                 "worst short-request first audio at the highest level vs alone: "
                 f"{report['short_first_audio_vs_alone']}x; "
                 "a short request arriving during a long one: first audio "
                 f"{report['short_during_long_first_audio_s']} s, "
                 f"{report['short_during_long_vs_alone']}x alone")
    return "\n".join(lines)
