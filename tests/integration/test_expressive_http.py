"""Pauses, speed, numbers and subtitles over HTTP: the jobs API and the OpenAI endpoint (as an
extension field), through real qwen_tts on the tiny checkpoint served by uvicorn."""

from __future__ import annotations

import io

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf

from tests.integration.servers import wait_until

RATE = 24000


def _done(url: str, job_id: str) -> dict:
    def finished() -> dict | None:
        job = httpx.get(f"{url}/v1/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None
    return wait_until(finished, timeout=60, what=f"job {job_id}")


def test_a_job_with_pauses_speed_and_numbers_has_subtitles(service_url, library_voice):
    body = {"input": "Chapter 2. [pause:800ms] It starts at 10:30.", "voice": library_voice, "seed": 3,
            "max_frames": 8, "speed": 1.25, "read_numbers": True, "language": "English"}
    job = httpx.post(f"{service_url}/v1/jobs", json=body).json()
    job = _done(service_url, job["id"])
    assert job["status"] == "succeeded", job
    chunks = job["result"]["chunks"]
    assert [c["text"] for c in chunks] == ["Chapter 2.", "It starts at 10:30."]
    assert chunks[0]["spoken"] == "Chapter two." and chunks[1]["spoken"] == "It starts at ten thirty."
    assert chunks[1]["start"] - chunks[0]["end"] == pytest.approx(0.8, abs=1e-3)  # the pause, as written
    srt = httpx.get(f"{service_url}/v1/jobs/{job['id']}/subtitles")
    assert srt.status_code == 200 and srt.headers["content-type"].startswith("application/x-subrip")
    assert "Chapter 2." in srt.text and "-->" in srt.text
    vtt = httpx.get(f"{service_url}/v1/jobs/{job['id']}/subtitles", params={"format": "vtt"})
    assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT")
    bad = httpx.get(f"{service_url}/v1/jobs/{job['id']}/subtitles", params={"format": "txt"})
    assert bad.status_code == 400 and "srt or vtt" in bad.json()["error"]["hint"]


@pytest.mark.parametrize("fields, fragment", [
    ('"input": "Hi [pause:-1s] there."', "malformed pause"),
    ('"input": "Hi.", "speed": 3.0', "speed"),
    ('"input": "Hi.", "speed": NaN', "speed"),
])
def test_bad_expressive_job_fields_are_400(service_url, library_voice, fields, fragment):
    content = f'{{{fields}, "voice": "{library_voice}"}}'
    response = httpx.post(f"{service_url}/v1/jobs", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400 and fragment in response.text


def test_openai_speech_obeys_pauses_and_markup_false_reads_them(service_url, library_voice):
    client = openai.OpenAI(base_url=f"{service_url}/v1", api_key="unused", max_retries=0)

    def pcm(text: str, **extra: object) -> np.ndarray:
        response = client.audio.speech.create(model="tts-1", voice=library_voice, input=text, response_format="pcm",
                                              extra_body={"seed": 5, "max_frames": 6, **extra})
        return np.frombuffer(response.read(), "<i2")

    plain = pcm("Hello.")
    paused = pcm("Hello. [pause:1s]")
    assert len(paused) == len(plain) + RATE and not paused[len(plain):].any()  # a second of silence at the end
    literal = pcm("Hello. [pause:1s]", markup=False)
    assert len(literal) != len(paused)  # the tag went to the model as text


def test_openai_speed_is_stretched_the_same_way_as_jobs(service_url, library_voice):
    client = openai.OpenAI(base_url=f"{service_url}/v1", api_key="unused", max_retries=0)
    response = client.audio.speech.create(model="tts-1", voice=library_voice, input="Hello there.",
                                          response_format="wav", speed=0.5, extra_body={"seed": 5, "max_frames": 6})
    slow, _ = sf.read(io.BytesIO(response.read()))
    job = httpx.post(f"{service_url}/v1/jobs", json={"input": "Hello there.", "voice": library_voice, "seed": 5,
                                                     "max_frames": 6, "speed": 0.5}).json()
    job = _done(service_url, job["id"])
    audio, _ = sf.read(io.BytesIO(httpx.get(f"{service_url}/v1/jobs/{job['id']}/audio").content))
    assert len(slow) == len(audio)
    np.testing.assert_allclose(slow, audio, atol=2e-4)
