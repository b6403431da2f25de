"""Bad input over HTTP: each case gets an OpenAI-style JSON error with the right status."""

import io
import time

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.integration.servers import running_app


def _error(response, status):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"] and error["code"]
    return error


def _wav(seconds=2.0):
    buffer = io.BytesIO()
    t = np.arange(int(seconds * 16000)) / 16000
    sf.write(buffer, 0.3 * np.sin(2 * np.pi * 200 * t), 16000, format="WAV")
    return buffer.getvalue()


@pytest.mark.parametrize("body, status, fragment", [
    ({"input": "", "voice": "alice"}, 400, "nothing to speak"),
    ({"input": " \n\t ", "voice": "alice"}, 400, "nothing to speak"),
    ({"input": "hi", "voice": "ghost"}, 404, "does not exist"),
    ({"input": "hi", "voice": "../x"}, 400, "invalid voice id"),
    ({"input": "hi", "voice": "alice", "language": "Elvish"}, 400, "unsupported language"),
    ({"input": "hi", "voice": "alice", "response_format": "aac"}, 400, "aac"),
    ({"input": "hi", "voice": "alice", "surprise": 1}, 400, "surprise"),
    ({"voice": "alice"}, 400, "input"),
])
def test_bad_job_submissions(service_url, body, status, fragment):
    assert fragment in _error(httpx.post(f"{service_url}/v1/jobs", json=body), status)["message"]


def test_too_long_job_text(service_url, service_settings):
    response = httpx.post(f"{service_url}/v1/jobs", json={"input": "x" * (service_settings.max_text_chars + 1),
                                                          "voice": "alice"})
    assert _error(response, 413)["code"] == "too_large"


def test_malformed_json(service_url):
    response = httpx.post(f"{service_url}/v1/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert "not valid JSON" in _error(response, 400)["message"]


def test_unknown_job(service_url):
    for method, path in (("GET", "/v1/jobs/job_nope"), ("GET", "/v1/jobs/job_nope/audio"), ("DELETE",
                                                                                            "/v1/jobs/job_nope")):
        assert "does not exist" in _error(httpx.request(method, service_url + path), 404)["message"]


def test_unknown_route_and_voice(service_url):
    _error(httpx.get(f"{service_url}/v1/nothing"), 404)
    _error(httpx.get(f"{service_url}/v1/audio/voices/ghost"), 404)
    _error(httpx.get(f"{service_url}/v1/audio/voices/Bad.Id"), 400)
    _error(httpx.get(f"{service_url}/v1/audio/voices/..%2F..%2Fetc"), 404)  # never reaches the library


def test_voice_upload_and_delete(service_url):
    response = httpx.post(f"{service_url}/v1/audio/voices", data={"voice_id": "bob", "ref_text": "Hello there."},
                          files={"file": ("bob.wav", _wav(), "audio/wav")})
    assert response.status_code == 201, response.text
    assert response.json()["mode"] == "icl"
    assert "bob" in [v["id"] for v in httpx.get(f"{service_url}/v1/audio/voices").json()["data"]]
    assert httpx.delete(f"{service_url}/v1/audio/voices/bob").json()["deleted"] is True
    _error(httpx.delete(f"{service_url}/v1/audio/voices/bob"), 404)


@pytest.mark.parametrize("data, content, status, fragment", [
    ({"voice_id": "v1", "ref_text": "hi"}, b"", 400, "empty"),
    ({"voice_id": "v2", "ref_text": "hi"}, b"\x00\x01garbage" * 100, 400, "could not be decoded"),
    ({"voice_id": "v3", "ref_text": "hi"}, "plain text, not audio".encode(), 400, "could not be decoded"),
    ({"voice_id": "../../evil", "ref_text": "hi"}, None, 400, "invalid voice id"),
    ({"voice_id": "alice", "ref_text": "hi"}, None, 400, "already exists"),
    ({"voice_id": "v4"}, None, 400, "ref_text is required"),
])
def test_bad_voice_uploads(service_url, data, content, status, fragment):
    files = {"file": ("ref.wav", _wav() if content is None else content, "audio/wav")}
    response = httpx.post(f"{service_url}/v1/audio/voices", data=data, files=files)
    assert fragment in _error(response, status)["message"]


def test_upload_without_a_file(service_url):
    _error(httpx.post(f"{service_url}/v1/audio/voices", data={"voice_id": "v5", "ref_text": "hi"}), 400)


def test_oversized_upload(service_settings, tiny_engine, library_voice):
    from qtts.server.app import create_app

    settings = service_settings.replace(max_upload_bytes=100_000)
    with running_app(create_app(settings, tiny_engine)) as url:
        big = _wav(seconds=5.0)  # 160 kB
        response = httpx.post(f"{url}/v1/audio/voices", data={"voice_id": "big", "ref_text": "hi"},
                              files={"file": ("big.wav", big, "audio/wav")})
        assert "over" in _error(response, 413)["message"]
        huge = b"\x00" * (2 * 1024 * 1024)
        response = httpx.post(f"{url}/v1/audio/voices", data={"voice_id": "huge", "ref_text": "hi"},
                              files={"file": ("huge.wav", huge, "audio/wav")})
        _error(response, 413)


def test_too_long_reference(service_url):
    response = httpx.post(f"{service_url}/v1/audio/voices", data={"voice_id": "long", "x_vector_only": "true"},
                          files={"file": ("long.wav", _wav(seconds=31.0), "audio/wav")})
    assert "limit is 30" in _error(response, 413)["message"]


def test_api_key_is_required_when_configured(service_settings, tiny_engine, library_voice):
    from qtts.server.app import create_app

    with running_app(create_app(service_settings.replace(api_key="s3cret"), tiny_engine)) as url:
        assert httpx.get(f"{url}/health").status_code == 200
        _error(httpx.get(f"{url}/v1/jobs"), 401)
        _error(httpx.get(f"{url}/v1/jobs", headers={"Authorization": "Bearer wrong"}), 401)
        _error(httpx.get(f"{url}/v1/jobs", headers={"Authorization": "s3cret"}), 401)
        assert httpx.get(f"{url}/v1/jobs", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_not_ready_until_the_model_loads(service_settings):
    from qtts.engine.holder import Engines
    from qtts.server.app import create_app

    holder = Engines(service_settings)
    holder.start_loading = lambda model_id=None: None  # never loads: as during a slow start
    with running_app(create_app(service_settings.replace(embedded_worker=False), holder)) as url:
        assert httpx.get(f"{url}/ready").status_code == 503
        response = httpx.post(f"{url}/v1/audio/speech", json={"model": "tts-1", "input": "hi", "voice": "alice"})
        assert response.status_code in (404, 503)  # the voice check may come first


def test_health_answers_during_synthesis(service_url, library_voice):
    import threading

    text = " ".join(f"Sentence {i} is being spoken now." for i in range(8))
    done = threading.Event()

    def speak():
        httpx.post(f"{service_url}/v1/audio/speech", json={"model": "tts-1", "input": text, "voice": library_voice,
                                                            "response_format": "wav"}, timeout=120)
        done.set()

    thread = threading.Thread(target=speak)
    thread.start()
    time.sleep(0.5)
    latencies = []
    while not done.is_set() and len(latencies) < 20:
        started = time.perf_counter()
        assert httpx.get(f"{service_url}/health", timeout=5).status_code == 200
        latencies.append(time.perf_counter() - started)
        time.sleep(0.1)
    thread.join()
    assert latencies and max(latencies) < 2.0
