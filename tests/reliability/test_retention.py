"""Retention: finished jobs, their audio and their Redis keys are deleted after
QTTS_JOB_RETENTION (by the workers) or on 'qtts queue prune'; unfinished jobs never are."""

from __future__ import annotations

import json
import time

import pytest

from qtts.jobs.job import SUCCEEDED
from qtts.jobs.queue import JobQueue
from qtts.request import SpeakRequest, VoiceSource
from tests.integration.helpers import run
from tests.integration.servers import redis_server

pytestmark = pytest.mark.tally("fault")


def _finished_and_running(queue: JobQueue) -> tuple[str, str, list]:
    request = SpeakRequest(text="Kept for a while.", voice=VoiceSource(voice_id="v"))
    done, running = queue.submit(request), queue.submit(request)
    claimed = queue.store.claim(done.id, "w", 60, 3)
    artifact = queue.artifacts_dir / f"{done.id}.a1.wav"
    artifact.parent.mkdir(parents=True, exist_ok=True)
    artifact.write_bytes(b"RIFF")
    assert queue.store.finish(done.id, "w", claimed.attempts, SUCCEEDED, artifact=str(artifact))
    queue.store.claim(running.id, "w", 60, 3)
    return done.id, running.id, [artifact]


def test_prune_deletes_finished_jobs_and_their_audio_only(service_settings):
    queue = JobQueue(service_settings)
    done, running, artifacts = _finished_and_running(queue)
    assert queue.prune() == []  # younger than the 7-day default
    assert queue.prune(older_than_s=0) == [done]
    with pytest.raises(Exception, match="does not exist"):
        queue.store.get(done)
    assert queue.store.get(running).status == "running"
    assert not any(path.exists() for path in artifacts)


def test_a_retention_of_zero_keeps_everything(service_settings):
    queue = JobQueue(service_settings.replace(job_retention="0"))
    _finished_and_running(queue)
    assert queue.prune() == []


def test_queue_prune_command(service_settings):
    queue = JobQueue(service_settings)
    done, running, _ = _finished_and_running(queue)
    time.sleep(0.05)
    result = run("queue", "prune", "--older-than", "0", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"pruned": [done]}
    bad = run("queue", "prune", "--older-than", "a week")
    assert bad.exit_code == 2 and "not a duration" in bad.stderr


def test_redis_keys_are_deleted_too(service_settings, tmp_path):
    with redis_server(tmp_path) as url:
        settings = service_settings.replace(queue_url=url)
        queue = JobQueue(settings)
        done, running, _ = _finished_and_running(queue)
        assert queue.prune(older_than_s=0) == [done]
        client = queue.store.client
        assert not client.exists(f"qtts:job:{done}") and client.zscore("qtts:jobs", done) is None
        assert client.exists(f"qtts:job:{running}")
