"""The queue under real processes: Redis with two workers.  Real qwen_tts on the tiny
checkpoint.  The fault scenarios (kill -9, restarts, load) are in tests/reliability."""

import concurrent.futures

import httpx

from qtts.jobs.job import SUCCEEDED
from qtts.jobs.queue import JobQueue
from tests.integration.servers import all_final, process_env, qtts_process, redis_server, running_app, stop, wait_until


def test_redis_two_workers_twenty_concurrent_jobs(service_settings, tiny_engine, library_voice, tmp_path):
    from qtts.server.app import create_app

    with redis_server(tmp_path) as url:
        settings = service_settings.replace(queue_url=url, embedded_worker=False)
        workers = [qtts_process(["worker"], process_env(settings, QTTS_QUEUE_URL=url), tmp_path / f"worker{i}.log")
                   for i in range(2)]
        try:
            # both consuming before the jobs arrive: one worker alone can finish 20 tiny jobs
            # while the other still imports
            wait_until(lambda: all("worker ready" in _text(tmp_path / f"worker{i}.log") for i in range(2)),
                       timeout=180, interval=0.5, what="both workers ready")
            with running_app(create_app(settings, tiny_engine)) as api:
                def submit(i):
                    body = {"input": f"Distributed job number {i}.", "voice": library_voice, "seed": i, "max_frames": 8}
                    response = httpx.post(f"{api}/v1/jobs", json=body, timeout=30)
                    assert response.status_code == 202, response.text
                    return response.json()["id"]

                with concurrent.futures.ThreadPoolExecutor(20) as pool:
                    ids = list(pool.map(submit, range(20)))
                queue = JobQueue(settings)
                jobs = wait_until(lambda: all_final(queue.store, ids), timeout=240, interval=0.5, what="20 jobs")
        finally:
            for worker in workers:
                stop(worker)
    assert [j.status for j in jobs] == [SUCCEEDED] * 20, [(j.status, j.error_message) for j in jobs]
    assert [j.attempts for j in jobs] == [1] * 20  # each ran exactly once
    assert len({j.worker for j in jobs}) == 2  # both workers took jobs
    artifacts = sorted(p.name for p in settings.artifacts_path.iterdir())
    assert artifacts == sorted(f"{i}.a1.wav" for i in ids)  # one attempt each


def _text(path) -> str:  # noqa: ANN001
    return path.read_text(errors="replace") if path.exists() else ""
