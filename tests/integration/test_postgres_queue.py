"""The queue on PostgreSQL: PostgresHuey carries the ids, the job table lives in PostgreSQL."""

import httpx

from tests.integration.servers import postgres_server, running_app, wait_until


def test_jobs_run_through_postgres(service_settings, tiny_engine, library_voice, tmp_path):
    from qtts.jobs.queue import JobQueue
    from qtts.server.app import create_app

    with postgres_server(tmp_path / "pg") as url:
        settings = service_settings.replace(queue_url=url)
        with running_app(create_app(settings, tiny_engine)) as api:
            ids = [httpx.post(f"{api}/v1/jobs", json={"input": f"Postgres job {i}.", "voice": library_voice,
                                                      "max_frames": 6}).json()["id"] for i in range(3)]
            store = JobQueue(settings).store
            jobs = wait_until(lambda: [store.get(i) for i in ids] if all(
                store.get(i).status == "succeeded" for i in ids) else None, timeout=120, what="postgres jobs")
            assert [j.attempts for j in jobs] == [1, 1, 1]
            versions = store._fetch("SELECT version FROM schema_migrations")
            assert [row["version"] for row in versions] == [1]
            page = httpx.get(f"{api}/v1/jobs", params={"limit": 2}).json()
            assert page["total"] == 3 and len(page["data"]) == 2
