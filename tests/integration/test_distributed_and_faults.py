"""The queue under real processes: Redis with two workers, kill -9 mid-job, server restart,
and a 50-job load on the embedded queue.  Real qwen_tts on the tiny checkpoint throughout."""

import concurrent.futures
import os
import signal
import statistics
import time

import httpx

from qtts.jobs.model import SUCCEEDED
from qtts.jobs.queue import JobQueue
from qtts.synthesis import SpeakRequest, VoiceSource
from tests.integration.servers import free_port, qtts_process, redis_server, running_app, stop, wait_until


def _env(settings, **extra):
    env = {"QTTS_HOME": str(settings.home), "QTTS_MODEL_ID": settings.model_id, "QTTS_JOB_LEASE_S": "2",
           "HF_HUB_OFFLINE": "1"}
    return {**env, **{k: str(v) for k, v in extra.items()}}


def _all_final(store, ids):
    jobs = [store.get(i) for i in ids]
    return jobs if all(j.status in ("succeeded", "failed", "cancelled") for j in jobs) else None


def test_redis_two_workers_twenty_concurrent_jobs(service_settings, tiny_engine, library_voice, tmp_path):
    from qtts.server.app import create_app

    with redis_server(tmp_path) as url:
        settings = service_settings.replace(queue_url=url, embedded_worker=False)
        workers = [qtts_process(["worker"], _env(settings, QTTS_QUEUE_URL=url), tmp_path / f"worker{i}.log")
                   for i in range(2)]
        try:
            with running_app(create_app(settings, tiny_engine)) as api:
                def submit(i):
                    body = {"input": f"Distributed job number {i}.", "voice": library_voice, "seed": i, "max_frames": 8}
                    response = httpx.post(f"{api}/v1/jobs", json=body, timeout=30)
                    assert response.status_code == 202, response.text
                    return response.json()["id"]

                with concurrent.futures.ThreadPoolExecutor(20) as pool:
                    ids = list(pool.map(submit, range(20)))
                queue = JobQueue(settings)
                jobs = wait_until(lambda: _all_final(queue.store, ids), timeout=240, interval=0.5, what="20 jobs")
        finally:
            for worker in workers:
                stop(worker)
    assert [j.status for j in jobs] == [SUCCEEDED] * 20, [(j.status, j.error_message) for j in jobs]
    assert [j.attempts for j in jobs] == [1] * 20  # each ran exactly once
    assert len({j.worker for j in jobs}) == 2  # both workers took jobs
    artifacts = sorted(p.name for p in settings.artifacts_path.iterdir())
    assert artifacts == sorted(f"{i}.a1.wav" for i in ids)  # one attempt each


def _long_request(voice):
    text = " ".join(f"This is sentence number {i} of a long job." for i in range(12))
    return SpeakRequest(text=text, voice=VoiceSource(voice_id=voice), split_max_chars=45, max_frames=120, seed=1)


def test_worker_killed_mid_job_the_job_completes_after_restart(service_settings, library_voice, tmp_path):
    queue = JobQueue(service_settings)
    job = queue.submit(_long_request(library_voice))
    first = qtts_process(["worker"], _env(service_settings), tmp_path / "first.log")
    try:
        wait_until(lambda: queue.store.get(job.id).chunks_done >= 1, timeout=120, what="the job to start")
        os.kill(first.pid, signal.SIGKILL)  # mid-job, no chance to clean up
        first.wait()
        assert queue.store.get(job.id).status == "running"
        second = qtts_process(["worker"], _env(service_settings), tmp_path / "second.log")
        try:
            final = wait_until(lambda: _all_final(queue.store, [job.id]), timeout=240, interval=0.5, what="recovery")[0]
        finally:
            stop(second)
    finally:
        stop(first)
    assert final.status == SUCCEEDED, final.error_message
    assert final.attempts == 2
    assert [p.name for p in service_settings.artifacts_path.iterdir()] == [f"{job.id}.a2.wav"]  # one artifact, no partials


def test_server_restart_keeps_queued_jobs(service_settings, library_voice, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _env(service_settings)
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
        wait_until(lambda: all(httpx.get(f"{url}/v1/jobs/{i}").json()["status"] == "succeeded" for i in ids),
                   timeout=120, interval=0.5, what="the queued jobs")
    finally:
        stop(server)


def _ready(url):
    try:
        return httpx.get(f"{url}/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_load_fifty_concurrent_submissions(service_url, library_voice, capsys):
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

    wait_until(finished, timeout=300, interval=0.2, what="50 jobs")
    wall = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nload test: 50 jobs in {wall:.1f} s; /health latency during the run: "
              f"median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms "
              f"over {len(latencies)} probes")
    assert max(latencies) < 2.0
