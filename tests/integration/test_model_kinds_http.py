"""One server, three kinds of model (tiny Base, CustomVoice, VoiceDesign): the OpenAI speech
endpoint with the real ``openai`` client, the job API, the voice and model lists, a model
that does not fit, and the web page's speaker picker and instruction box in Chromium."""

import io

import httpx
import openai
import pytest
import soundfile as sf

from qtts.settings import Settings
from tests.integration.servers import running_app, wait_until


@pytest.fixture()
def kinds_settings(tiny_env, tiny_custom_model, tiny_design_model) -> Settings:
    return Settings.resolve({"job_lease_s": 5, "more_model_ids": f"{tiny_custom_model},{tiny_design_model}"})


@pytest.fixture()
def kinds_url(kinds_settings, tiny_engine, library_voice):
    from qtts.server.app import create_app

    with running_app(create_app(kinds_settings, tiny_engine)) as url:
        yield url


@pytest.fixture()
def client(kinds_url):
    return openai.OpenAI(base_url=f"{kinds_url}/v1", api_key="unused", max_retries=0)


def _wav_seconds(data: bytes) -> float:
    samples, rate = sf.read(io.BytesIO(data))
    assert rate == 24000
    return len(samples) / rate


def test_speech_with_a_preset_speaker_and_instructions(client, tiny_custom_model):
    raw = client.audio.speech.with_raw_response.create(
        model=str(tiny_custom_model), voice="Serena", input="Hello there.", response_format="wav",
        instructions="speak warmly", extra_body={"seed": 1})
    assert "X-Qtts-Warning" not in raw.headers
    assert _wav_seconds(raw.content) > 0


def test_speech_in_a_described_voice(client, tiny_design_model):
    response = client.audio.speech.with_raw_response.create(
        model=str(tiny_design_model), voice="alloy", input="Hello there.", response_format="wav",
        instructions="a calm, low-pitched older man", extra_body={"seed": 1})
    assert "voice is ignored" in response.headers["X-Qtts-Warning"]
    assert "instructions are ignored" not in response.headers["X-Qtts-Warning"]
    assert _wav_seconds(response.content) > 0


def test_openai_names_go_to_the_default_base_model_which_ignores_instructions(client, library_voice):
    response = client.audio.speech.with_raw_response.create(
        model="tts-1", voice=library_voice, input="Hello.", response_format="wav", instructions="whisper",
        extra_body={"seed": 2})
    assert "instructions are ignored" in response.headers["X-Qtts-Warning"]
    assert _wav_seconds(response.content) > 0


@pytest.mark.parametrize("model, voice, fragment", [
    ("custom", "alloy", "no speaker 'alloy'"),
    ("custom", "alice", "no speaker 'alice'"),
    ("design", "alloy", "needs a description"),  # no instructions: nothing says what the voice is
    ("tts-2", "alice", "unknown model"),
])
def test_speech_that_does_not_fit_is_a_400(client, tiny_custom_model, tiny_design_model, model, voice, fragment):
    name = {"custom": str(tiny_custom_model), "design": str(tiny_design_model)}.get(model, model)
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.speech.create(model=name, voice=voice, input="Hello.", response_format="wav")
    assert fragment in info.value.body["message"] if "message" in info.value.body else info.value.body


def _job(url, body):
    response = httpx.post(f"{url}/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    def done():
        job = httpx.get(f"{url}/v1/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None
    return wait_until(done, timeout=60, what=f"job {job_id}")


def test_jobs_for_each_kind(kinds_url, tiny_custom_model, tiny_design_model, library_voice):
    jobs = [
        _job(kinds_url, {"input": "One. Two.", "voice": library_voice, "max_frames": 6, "split_max_chars": 20}),
        _job(kinds_url, {"input": "One. Two.", "model": str(tiny_custom_model), "voice": "aiden",
                         "instructions": "slowly", "max_frames": 6, "seed": 3, "split_max_chars": 20}),
        _job(kinds_url, {"input": "One.", "model": str(tiny_design_model), "instructions": "a child", "max_frames": 6,
                         "seed": 3}),
    ]
    for job in jobs:
        assert job["status"] == "succeeded", job
        assert _wav_seconds(httpx.get(f"{kinds_url}/v1/jobs/{job['id']}/audio").content) > 0
    assert jobs[1]["request"]["voice"] == "aiden" and jobs[1]["request"]["instruct"] == "slowly"


@pytest.mark.parametrize("body, code", [
    ({"voice": "alice", "instructions": "whisper"}, "model_kind"),  # the Base default: strict on the job API
    ({"model": "CUSTOM", "voice": "alice"}, "input"),
    ({"model": "DESIGN", "voice": "alice", "instructions": "a child"}, "model_kind"),
    ({"model": "DESIGN"}, "input"),
])
def test_job_that_does_not_fit_is_refused_before_it_is_queued(kinds_url, tiny_custom_model, tiny_design_model,
                                                              library_voice, body, code):
    names = {"CUSTOM": str(tiny_custom_model), "DESIGN": str(tiny_design_model)}
    body = {"input": "Hello.", **{k: names.get(v, v) for k, v in body.items()}}
    response = httpx.post(f"{kinds_url}/v1/jobs", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert httpx.get(f"{kinds_url}/v1/jobs").json()["total"] == 0


def test_voices_and_models_are_listed_with_their_kind(kinds_url, tiny_custom_model, tiny_design_model,
                                                      library_voice):
    voices = httpx.get(f"{kinds_url}/v1/audio/voices").json()["data"]
    kinds = {(v["id"], v["kind"]) for v in voices}
    assert (library_voice, "cloned") in kinds and ("ryan", "preset") in kinds
    assert next(v for v in voices if v["id"] == "ryan")["model"] == str(tiny_custom_model)
    models = {m["id"]: m for m in httpx.get(f"{kinds_url}/v1/models").json()["data"]}
    assert models[str(tiny_custom_model)]["kind"] == "CustomVoice"
    assert len(models[str(tiny_custom_model)]["speakers"]) == 9
    assert models[str(tiny_design_model)]["kind"] == "VoiceDesign"
    assert models[str(tiny_design_model)]["takes_instructions"] is True
    assert models["tts-1"]["alias_of"] != str(tiny_custom_model)


def test_a_model_that_does_not_fit_is_a_503_and_the_others_keep_serving(tiny_env, tiny_custom_model,
                                                                        tiny_engine, library_voice):
    from qtts.engine import memory
    from qtts.server.app import create_app

    need = memory.estimate(tiny_engine.model.path, "int8", 0, 4).need_bytes
    settings = Settings.resolve({"more_model_ids": str(tiny_custom_model), "memory_limit_bytes": int(need * 1.5)})
    with running_app(create_app(settings, tiny_engine)) as url:
        body = {"model": str(tiny_custom_model), "input": "Hi.", "voice": "ryan", "response_format": "wav"}
        response = httpx.post(f"{url}/v1/audio/speech", json=body, timeout=60)
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "model_memory" and "0.6b" in error["hint"]
        ok = httpx.post(f"{url}/v1/audio/speech", json={"model": "tts-1", "input": "Hi.", "voice": library_voice,
                                                        "response_format": "wav", "seed": 1}, timeout=60)
        assert ok.status_code == 200


def test_web_page_speaker_picker_and_instruction_box(browser, kinds_url, tiny_custom_model, tiny_design_model,
                                                     library_voice):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(kinds_url + "/")
    page.wait_for_selector(f"#voice option[value='{library_voice}']", state="attached")
    assert page.is_hidden("#instruct-row")  # the Base default takes no instructions

    page.select_option("#model", str(tiny_custom_model))
    page.wait_for_selector("#voice option[value='ryan']", state="attached")
    assert page.inner_text("#voice-name") == "Speaker" and page.is_visible("#instruct-row")
    page.select_option("#voice", "ryan")
    page.fill("#instruct", "cheerful")
    page.fill("#text", "Hello from a preset speaker.")
    page.click("#speak")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Done')", timeout=60_000)

    page.select_option("#model", str(tiny_design_model))
    assert page.is_hidden("#voice-label") and page.is_visible("#instruct-row")
    page.fill("#instruct", "a calm older man")
    page.fill("#text", "Hello in a described voice.")
    page.click("#speak")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Done')", timeout=60_000)
    page.click("#submit")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Queued job_')")
    page.wait_for_selector("#jobs .job-status:text('succeeded')", timeout=60_000)
    page.wait_for_function("document.getElementById('batch').textContent.includes('generating')")
    assert not errors
