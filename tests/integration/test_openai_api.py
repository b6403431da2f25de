"""The real ``openai`` client against qtts's speech endpoint (real qwen_tts, tiny checkpoint)."""

import base64
import io
import json

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf

TEXT = "Hello there. This is the second sentence."


@pytest.fixture()
def client(service_url):
    return openai.OpenAI(base_url=f"{service_url}/v1", api_key="unused", max_retries=0)


def _decode(fmt, data):
    if fmt == "pcm":
        assert len(data) % 2 == 0
        return np.frombuffer(data, "<i2"), 24000
    return sf.read(io.BytesIO(data))


@pytest.mark.parametrize("fmt", ["mp3", "opus", "flac", "wav", "pcm"])
def test_speech_create_each_format(client, library_voice, fmt):
    response = client.audio.speech.create(model="tts-1", voice=library_voice, input=TEXT, response_format=fmt,
                                          extra_body={"seed": 1})
    samples, rate = _decode(fmt, response.read())
    assert rate == 24000
    assert len(samples) / rate > 0.2


def test_default_format_is_mp3_and_voice_may_be_an_object(client, library_voice):
    response = client.audio.speech.create(model="gpt-4o-mini-tts", voice={"id": library_voice}, input="Hi.",
                                          extra_body={"seed": 2})
    assert response.response.headers["content-type"] == "audio/mpeg"
    assert sf.read(io.BytesIO(response.read()))[1] == 24000


def test_streaming_response_arrives_chunk_by_chunk(client, library_voice):
    text = "First sentence here. Second sentence here. Third sentence here."
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice=library_voice, input=text, response_format="pcm",
            extra_body={"seed": 3}) as response:
        parts = [part for part in response.iter_bytes() if part]
    data = b"".join(parts)
    assert len(data) > 0 and len(data) % 2 == 0
    assert len(parts) >= 2  # not one blob at the end


def test_streamed_wav_decodes(client, library_voice):
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice=library_voice, input=TEXT, response_format="wav", extra_body={"seed": 4}) as response:
        data = response.read()
    samples, rate = sf.read(io.BytesIO(data))
    assert rate == 24000 and len(samples) > 0


def test_sse_stream_has_deltas_and_done(service_url, library_voice):
    body = {"model": "tts-1", "voice": library_voice, "input": TEXT, "response_format": "pcm",
            "stream_format": "sse", "seed": 5}
    events = []
    with httpx.stream("POST", f"{service_url}/v1/audio/speech", json=body, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert [e["type"] for e in events][-1] == "speech.audio.done"
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert deltas and all(base64.b64decode(d["audio"]) for d in deltas)
    assert events[-1]["usage"]["audio_seconds"] > 0


def test_instructions_are_reported_as_not_applicable(client, library_voice):
    response = client.audio.speech.create(model="tts-1", voice=library_voice, input="Hi.", response_format="wav",
                                          instructions="Speak cheerfully.", extra_body={"seed": 6})
    assert "instructions are ignored" in response.response.headers["x-qtts-warning"]


def test_speed_changes_the_duration(client, library_voice):
    def seconds(speed):
        response = client.audio.speech.create(model="tts-1", voice=library_voice, input="Hello there, my friend.",
                                              response_format="wav", speed=speed, extra_body={"seed": 7})
        samples, rate = sf.read(io.BytesIO(response.read()))
        return len(samples) / rate
    assert seconds(2.0) == pytest.approx(seconds(1.0) / 2, rel=0.1)


def test_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert {"tts-1", "tts-1-hd", "gpt-4o-mini-tts"} <= set(ids)


@pytest.mark.parametrize("kwargs, status, fragment", [
    ({"input": "   "}, 400, "nothing to speak"),
    ({"input": "x" * 4097}, 413, "limit is 4096"),
    ({"voice": "nobody"}, 404, "does not exist"),
    ({"voice": "../../etc/passwd"}, 400, "invalid voice id"),
    ({"response_format": "aac"}, 400, "aac"),
    ({"model": "whisper-1"}, 400, "unknown model"),
    ({"extra_body": {"language": "Klingon"}}, 400, "unsupported language"),
])
def test_bad_speech_requests_are_openai_style_errors(client, library_voice, kwargs, status, fragment):
    args = {"model": "tts-1", "voice": library_voice, "input": "Hello.", **kwargs}
    with pytest.raises(openai.APIStatusError) as info:
        client.audio.speech.create(**args)
    assert info.value.status_code == status
    error = info.value.body["error"] if "error" in info.value.body else info.value.body
    assert fragment in error["message"] and error["type"] and error["code"]
