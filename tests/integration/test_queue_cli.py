"""qtts queue submit/status/fetch/list against a running server (real qwen_tts, tiny checkpoint)."""

import json

import soundfile as sf

from tests.integration.helpers import run


def test_submit_status_fetch_cycle(service_url, library_voice, tmp_path):
    submitted = run("queue", "submit", "--server", service_url, "--voice-id", library_voice, "--seed", "1",
                    "--max-frames", "20", "Queued from the command line.")
    assert submitted.exit_code == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert job_id.startswith("job_")

    status = run("queue", "status", "--server", service_url, job_id, "--watch", "--interval", "0.2")
    assert status.exit_code == 0 and status.stdout.strip() == "succeeded"

    out = tmp_path / "fetched.flac"
    fetched = run("queue", "fetch", "--server", service_url, job_id, "--out", str(out))
    assert fetched.exit_code == 0, fetched.stderr
    samples, rate = sf.read(out)
    assert rate == 24000 and len(samples) > 0

    listed = run("queue", "list", "--server", service_url, "--json")
    assert job_id in [j["id"] for j in json.loads(listed.stdout)["data"]]


def test_text_from_stdin_and_json_output(service_url, library_voice):
    result = run("queue", "submit", "--server", service_url, "--voice-id", library_voice, "--max-frames", "4",
                 "--json", input="From stdin.")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["request"]["text"] == "From stdin."


def test_bad_submission_is_reported_with_the_servers_hint(service_url):
    result = run("queue", "submit", "--server", service_url, "--voice-id", "ghost", "Hi.")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr and "hint:" in result.stderr


def test_unknown_job(service_url):
    result = run("queue", "status", "--server", service_url, "job_nope")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_no_server_names_qtts_serve():
    from tests.integration.servers import free_port

    result = run("queue", "status", "--server", f"http://127.0.0.1:{free_port()}", "job_x")
    assert result.exit_code == 8
    assert "no qtts server answers" in result.stderr and "qtts serve" in result.stderr
