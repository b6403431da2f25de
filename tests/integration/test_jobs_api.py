"""The job API through real qwen_tts on the tiny checkpoint, served by uvicorn."""

import io

import httpx
import soundfile as sf

from tests.integration.servers import wait_until


def _wait_done(url, job_id, timeout=60):
    def done():
        job = httpx.get(f"{url}/v1/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None
    return wait_until(done, timeout=timeout, what=f"job {job_id}")


def test_job_lifecycle(service_url, library_voice):
    response = httpx.post(f"{service_url}/v1/jobs", json={
        "input": "The first sentence. And the second one.", "voice": library_voice, "seed": 1,
        "split_max_chars": 20, "max_frames": 20})
    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "queued" and response.headers["location"] == f"/v1/jobs/{job['id']}"
    job = _wait_done(service_url, job["id"])
    assert job["status"] == "succeeded", job
    assert job["progress"] == {"chunks_done": 2, "chunks_total": 2}
    assert job["attempts"] == 1 and job["started_at"] <= job["finished_at"]
    audio = httpx.get(f"{service_url}/v1/jobs/{job['id']}/audio")
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    samples, rate = sf.read(io.BytesIO(audio.content))
    assert rate == 24000 and len(samples) / rate == job["result"]["audio_seconds"]
    flac = httpx.get(f"{service_url}/v1/jobs/{job['id']}/audio", params={"format": "flac"})
    assert sf.read(io.BytesIO(flac.content))[0].shape == samples.shape


def test_listing_is_paged(service_url, library_voice):
    ids = [httpx.post(f"{service_url}/v1/jobs", json={"input": f"Item {i}.", "voice": library_voice,
                                                      "max_frames": 4}).json()["id"] for i in range(3)]
    page = httpx.get(f"{service_url}/v1/jobs", params={"limit": 2}).json()
    assert page["total"] == 3 and len(page["data"]) == 2
    assert [j["id"] for j in page["data"]] == ids[::-1][:2]
    rest = httpx.get(f"{service_url}/v1/jobs", params={"limit": 2, "offset": 2}).json()
    assert [j["id"] for j in rest["data"]] == ids[:1]
    for job_id in ids:
        _wait_done(service_url, job_id)


def test_cancel_a_queued_job(service_settings, tiny_engine, library_voice):
    from qtts.server.app import create_app
    from tests.integration.servers import running_app

    with running_app(create_app(service_settings.replace(embedded_worker=False), tiny_engine)) as url:
        job = httpx.post(f"{url}/v1/jobs", json={"input": "Never spoken.", "voice": library_voice}).json()
        cancelled = httpx.delete(f"{url}/v1/jobs/{job['id']}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        again = httpx.delete(f"{url}/v1/jobs/{job['id']}")
        assert again.status_code == 400 and "already cancelled" in again.json()["error"]["message"]
        audio = httpx.get(f"{url}/v1/jobs/{job['id']}/audio")
        assert audio.status_code == 409


def test_cancel_a_running_job(service_url, library_voice):
    text = " ".join(f"Sentence number {i} is here." for i in range(30))
    job = httpx.post(f"{service_url}/v1/jobs", json={"input": text, "voice": library_voice, "split_max_chars": 30,
                                                     "max_frames": 60}).json()
    wait_until(lambda: httpx.get(f"{service_url}/v1/jobs/{job['id']}").json()["status"] == "running", what="running")
    assert httpx.delete(f"{service_url}/v1/jobs/{job['id']}").status_code == 200
    final = _wait_done(service_url, job["id"])
    assert final["status"] == "cancelled"
    assert final["progress"]["chunks_done"] < final["progress"]["chunks_total"]


def test_failed_job_records_the_classified_error(service_url, library_voice, service_settings):
    from qtts.voices import VoiceLibrary

    job = httpx.post(f"{service_url}/v1/jobs", json={"input": "Hello.", "voice": library_voice,
                                                     "timeout_s": 0.000001}).json()
    final = _wait_done(service_url, job["id"])
    assert final["status"] == "failed"
    assert final["error"]["category"] == "timeout" and "chunk 1/1" in final["error"]["message"]
    assert final["error"]["hint"]
    assert VoiceLibrary(service_settings.voices_dir).exists(library_voice)
