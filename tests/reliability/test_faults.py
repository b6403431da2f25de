"""Faults the queue survives, under real processes and real qwen_tts (tiny checkpoint):
worker kill -9 mid-job, a poison job that kills its worker every time, a stolen lease,
server and Redis restarts, a full disk, a pickled message, and a 50-job load."""

from __future__ import annotations

import concurrent.futures
import os
import pickle
import signal
import statistics
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from qtts.jobs.job import FAILED, RUNNING, SUCCEEDED
from qtts.jobs.queue import JobQueue
from qtts.request import SpeakRequest, VoiceSource
from tests.integration.servers import (
    all_final,
    free_port,
    process_env,
    qtts_process,
    require,
    running_app,
    stop,
    wait_until,
)

pytestmark = pytest.mark.tally("fault")


def _long_request(voice):
    text = " ".join(f"This is sentence number {i} of a long job." for i in range(12))
    return SpeakRequest(text=text, voice=VoiceSource(voice_id=voice), split_max_chars=45, max_frames=120, seed=1)


def test_worker_killed_mid_job_the_job_completes_after_restart(service_settings, library_voice, tmp_path, tally):
    queue = JobQueue(service_settings)
    job = queue.submit(_long_request(library_voice))
    first = qtts_process(["worker"], process_env(service_settings), tmp_path / "first.log")
    try:
        wait_until(lambda: queue.store.get(job.id).chunks_done >= 1, timeout=120, what="the job to start")
        os.kill(first.pid, signal.SIGKILL)  # mid-job, no chance to clean up
        first.wait()
        assert queue.store.get(job.id).status == "running"
        second = qtts_process(["worker"], process_env(service_settings), tmp_path / "second.log")
        try:
            final = wait_until(lambda: all_final(queue.store, [job.id]), timeout=240, interval=0.5, what="recovery")[0]
        finally:
            stop(second)
    finally:
        stop(first)
    tally.jobs_checked += 1
    tally.jobs_lost += final.status != SUCCEEDED
    assert final.status == SUCCEEDED, final.error_message
    assert final.attempts == 2
    # one artifact, no partials
    assert [p.name for p in service_settings.artifacts_path.iterdir()] == [f"{job.id}.a2.wav"]


def test_server_restart_keeps_queued_jobs(service_settings, library_voice, tmp_path, tally):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = process_env(service_settings)
    server = qtts_process(["serve", "--port", str(port), "--no-worker"], env, tmp_path / "serve1.log")
    try:
        wait_until(lambda: _ready(url), timeout=120, what="the server")
        ids = [httpx.post(f"{url}/v1/jobs", json={"input": f"Survivor {i}.", "voice": library_voice,
                                                  "max_frames": 8}).json()["id"] for i in range(3)]
    finally:
        stop(server)
    server = qtts_process(["serve", "--port", str(port)], env, tmp_path / "serve2.log")
    try:
        wait_until(lambda: _ready(url), timeout=120, what="the restarted server")
        tally.jobs_checked += len(ids)
        wait_until(lambda: all(httpx.get(f"{url}/v1/jobs/{i}").json()["status"] == "succeeded" for i in ids),
                   timeout=120, interval=0.5, what="the queued jobs")
    except AssertionError:
        tally.jobs_lost += sum(httpx.get(f"{url}/v1/jobs/{i}").json()["status"] != "succeeded" for i in ids)
        raise
    finally:
        stop(server)


def _ready(url):
    try:
        return httpx.get(f"{url}/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_load_fifty_concurrent_submissions(service_url, library_voice, capsys, tally):
    started = time.perf_counter()

    def submit(i):
        body = {"input": f"Load test job {i}.", "voice": library_voice, "seed": i, "max_frames": 6}
        return httpx.post(f"{service_url}/v1/jobs", json=body, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(submit, range(50)))
    assert [r.status_code for r in responses] == [202] * 50
    ids = [r.json()["id"] for r in responses]
    latencies = []

    def finished():
        t0 = time.perf_counter()
        assert httpx.get(f"{service_url}/health", timeout=10).status_code == 200
        latencies.append(time.perf_counter() - t0)
        page = httpx.get(f"{service_url}/v1/jobs", params={"limit": 200}).json()
        statuses = {j["id"]: j["status"] for j in page["data"]}
        return all(statuses.get(i) == "succeeded" for i in ids)

    tally.jobs_checked += len(ids)
    wait_until(finished, timeout=300, interval=0.2, what="50 jobs")
    wall = time.perf_counter() - started
    tally.health_worst_s = max(latencies)
    with capsys.disabled():
        print(f"\nload test: 50 jobs in {wall:.1f} s; /health latency during the run: "
              f"median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms "
              f"over {len(latencies)} probes")
    assert max(latencies) < 2.0


def test_a_job_that_kills_its_worker_every_time_fails_after_the_attempt_cap(service_settings, library_voice,
                                                                            tmp_path, tally):
    settings = service_settings.replace(job_max_attempts=2)
    queue = JobQueue(settings)
    job = queue.submit(_long_request(library_voice))
    env = process_env(settings, QTTS_JOB_MAX_ATTEMPTS=2)
    for attempt in (1, 2):  # the worker dies mid-job on each attempt
        worker = qtts_process(["worker"], env, tmp_path / f"worker{attempt}.log")
        try:
            wait_until(lambda: (j := queue.store.get(job.id)).attempts == attempt and j.chunks_done >= 1,
                       timeout=120, what=f"attempt {attempt} to start")
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
        finally:
            stop(worker)
    survivor = qtts_process(["worker"], env, tmp_path / "survivor.log")
    try:
        final = wait_until(lambda: all_final(queue.store, [job.id]), timeout=60, interval=0.5, what="the cap")[0]
    finally:
        stop(survivor)
    tally.jobs_checked += 1
    tally.jobs_lost += final.status not in (FAILED, SUCCEEDED)
    assert final.status == FAILED and final.error_category == "worker_died" and final.attempts == 2
    assert "2 attempts" in final.error_message and "QTTS_JOB_MAX_ATTEMPTS" in final.error_hint
    assert list(settings.artifacts_path.glob(f"{job.id}*")) == []


def test_a_worker_that_lost_its_lease_can_neither_finish_nor_publish(service_settings, tiny_engine, library_voice,
                                                                     tally):
    from qtts.engine.holder import Engines
    from qtts.jobs.worker import Worker

    queue = JobQueue(service_settings)
    job = queue.submit(_long_request(library_voice))
    worker = Worker(queue, Engines(service_settings, tiny_engine), name="slow-worker")
    thread = threading.Thread(target=worker.process, args=(job.id,))
    thread.start()
    wait_until(lambda: queue.store.get(job.id).chunks_done >= 1, timeout=60, what="the job to start")
    # The lease is taken over, as another worker would after a network partition.
    queue.store._execute("UPDATE jobs SET lease_until = 0 WHERE id = ?", (job.id,))
    thief = queue.store.claim(job.id, "thief", 60, service_settings.job_max_attempts)
    assert thief is not None and thief.attempts == 2
    thread.join(timeout=120)
    assert not thread.is_alive()
    after = queue.store.get(job.id)
    assert after.status == RUNNING and after.worker == "thief" and after.attempts == 2  # untouched by slow-worker
    assert list(service_settings.artifacts_path.glob(f"{job.id}*")) == []
    assert queue.store.heartbeat(job.id, "slow-worker", 1, 60, 1, 1) is None
    assert not queue.store.finish(job.id, "slow-worker", 1, SUCCEEDED)
    assert queue.store.finish(job.id, "thief", 2, SUCCEEDED)
    tally.jobs_checked += 1


def test_redis_restart_with_queued_work(service_settings, tiny_engine, library_voice, tmp_path, tally):
    import shutil

    from qtts.server.app import create_app

    require("redis-server", shutil.which("redis-server"))
    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()

    def start_redis():
        process = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                                    "--appendonly", "yes", "--appendfsync", "always", "--dir", str(data)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        wait_until(lambda: _pings(redis.Redis(port=port)), timeout=20, what="redis-server")
        return process

    url = f"redis://127.0.0.1:{port}/0"
    settings = service_settings.replace(queue_url=url, embedded_worker=False)
    server = start_redis()
    try:
        with running_app(create_app(settings, tiny_engine)) as api:
            ids = [httpx.post(f"{api}/v1/jobs", json={"input": f"Kept across a Redis restart {i}.",
                                                      "voice": library_voice, "max_frames": 6}).json()["id"]
                   for i in range(3)]
        server.terminate()
        server.wait(timeout=20)
        server = start_redis()
        worker = qtts_process(["worker"], process_env(settings, QTTS_QUEUE_URL=url), tmp_path / "worker.log")
        try:
            store = JobQueue(settings).store
            jobs = wait_until(lambda: all_final(store, ids), timeout=120, interval=0.5, what="jobs after restart")
        finally:
            stop(worker)
    finally:
        server.terminate()
        server.wait(timeout=20)
    tally.jobs_checked += len(ids)
    tally.jobs_lost += sum(j.status != SUCCEEDED for j in jobs)
    assert [j.status for j in jobs] == [SUCCEEDED] * 3


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


@pytest.fixture()
def tiny_filesystem(tmp_path):
    """A 96 KiB tmpfs (root only; elsewhere this test is skipped)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_fails_the_job_cleanly_and_the_server_keeps_serving(service_settings, tiny_engine,
                                                                        library_voice, tiny_filesystem, tally):
    from qtts.server.app import create_app

    settings = service_settings.replace(artifacts_dir=str(tiny_filesystem))
    with running_app(create_app(settings, tiny_engine)) as api:
        def submit(frames):
            body = {"input": "Filling the disk with a long answer.", "voice": library_voice, "max_frames": frames,
                    "response_format": "wav"}
            return httpx.post(f"{api}/v1/jobs", json=body).json()["id"]

        filler = Path(tiny_filesystem) / "filler"
        with filler.open("wb", buffering=0) as handle:  # fill the disk to the last byte
            try:
                while True:
                    handle.write(b"\0" * 4096)
            except OSError:
                pass
        big = submit(8)
        job = wait_until(lambda: (j := httpx.get(f"{api}/v1/jobs/{big}").json())["status"] in ("failed", "succeeded")
                         and j, timeout=60, what="the big job")
        assert job["status"] == "failed" and job["error"]["category"] == "disk_full", job
        assert "no space left" in job["error"]["message"] and job["error"]["hint"]
        assert httpx.get(f"{api}/health").status_code == 200
        filler.unlink()  # space again: the next job succeeds
        small = submit(3)
        done = wait_until(lambda: (j := httpx.get(f"{api}/v1/jobs/{small}").json())["status"] in ("failed", "succeeded")
                          and j, timeout=60, what="the small job")
        assert done["status"] == "succeeded", done
        assert [p.name for p in Path(tiny_filesystem).iterdir()] == [f"{small}.a1.wav"]  # no partial file left
    tally.jobs_checked += 2


def test_a_pickled_queue_message_is_refused_and_logged_not_executed(service_settings, tiny_engine, library_voice,
                                                                    tmp_path, caplog):
    from huey.registry import Message

    from qtts.engine.holder import Engines
    from qtts.jobs.queue import MESSAGE_NAME
    from qtts.jobs.worker import Worker

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    queue = JobQueue(service_settings)
    queue.huey.storage.enqueue(pickle.dumps(Message("m1", MESSAGE_NAME, None, 0, 0, None, (Payload(),), {})))
    queue.huey.storage.enqueue(b'{"id": "m2", "name": "os.system", "job": "rm -rf /"}')
    real = queue.submit(SpeakRequest(text="After the attack.", voice=VoiceSource(voice_id=library_voice), max_frames=4))
    stop_event = threading.Event()
    worker = Worker(queue, Engines(service_settings, tiny_engine))
    thread = threading.Thread(target=worker.run, args=(stop_event,))
    with caplog.at_level("ERROR"):
        thread.start()
        try:
            wait_until(lambda: queue.store.get(real.id).status == SUCCEEDED, timeout=60, what="the real job")
        finally:
            stop_event.set()
            thread.join(timeout=30)
    assert not marker.exists()
    assert "refused a queue message" in caplog.text
    assert queue.huey.storage.queue_size() == 0
