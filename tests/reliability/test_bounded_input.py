"""Bad input from every source, refused where it enters: bounded reads, the same range for a
setting whatever its source, non-finite numbers, numbers past the store's range, stdout as
a file that can fail, messages that name the real cause.  Each test is a class in the tally."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from qtts.errors import BadInput
from qtts.settings import Settings
from tests.integration.helpers import run

pytestmark = pytest.mark.tally("bad_input")

CLIP_ARGS = ("--ref-text", "Hello there.", "--text", "Hello there, how are you today?")


def _speak(*args: str, stdout=subprocess.PIPE, stdin=None, **env: str) -> subprocess.CompletedProcess:  # noqa: ANN001
    return subprocess.run([sys.executable, "-m", "qtts", "speak", *args], stdout=stdout, stderr=subprocess.PIPE,
                          stdin=stdin, env={**os.environ, **env}, timeout=300)


def test_an_endless_text_file_is_refused_without_filling_memory(tiny_env, reference_clip):
    import resource

    started = time.monotonic()
    result = _speak("--ref-audio", str(reference_clip), "--ref-text", "Hi.", "--text-file", "/dev/zero", "--out", "-")
    assert result.returncode == 2 and b"text file /dev/zero is a device" in result.stderr
    assert time.monotonic() - started < 60
    # Through stdin, which cannot be refused by its type: read up to the limit, then refused.
    zeros = subprocess.Popen(["head", "-c", "50000000", "/dev/zero"], stdout=subprocess.PIPE)
    result = _speak("--ref-audio", str(reference_clip), "--ref-text", "Hi.", "--out", "-", stdin=zeros.stdout,
                    QTTS_MAX_TEXT_CHARS="1000")
    zeros.kill()
    assert result.returncode == 2 and b"longer than the limit of 1000 characters" in result.stderr
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert peak_kb < 2_000_000  # no child held the 50 MB (or more) it was offered many times over


def test_a_growing_text_file_is_read_only_to_the_limit(tiny_env, reference_clip, tmp_path):
    fifo = tmp_path / "growing"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"yes 'hello there' > {fifo}"])
    try:
        result = _speak("--ref-audio", str(reference_clip), "--ref-text", "Hi.", "--text-file", str(fifo),
                        "--out", "-", QTTS_MAX_TEXT_CHARS="5000")
    finally:
        writer.kill()
    assert result.returncode == 2 and b"longer than the limit of 5000 characters" in result.stderr


@pytest.mark.parametrize("kind", ["fifo", "device", "symlink to a device", "directory"])
def test_a_reference_that_is_not_a_regular_file_is_named_for_what_it_is(tiny_env, tmp_path, kind):
    path = tmp_path / "clip.wav"
    expected = {"fifo": "is a FIFO", "device": "is a device", "symlink to a device": "is a device",
                "directory": "is a directory"}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/zero")
    elif kind == "symlink to a device":
        path.symlink_to("/dev/urandom")
    else:
        path.mkdir()
    result = run("speak", "--ref-audio", str(path), *CLIP_ARGS, "--out", str(tmp_path / "x.wav"))
    assert result.exit_code == 2 and expected in result.stderr and "does not exist" not in result.stderr


@pytest.mark.parametrize("name, value, message", [
    ("QTTS_BATCH_SIZE", "0", "QTTS_BATCH_SIZE=0: batch_size must be 1-16"),
    ("QTTS_TIMEOUT_S", "-5", "QTTS_TIMEOUT_S=-5.0: timeout_s must be"),
    ("QTTS_TIMEOUT_S", "inf", "QTTS_TIMEOUT_S=inf"),
    ("QTTS_MAX_TEXT_CHARS", "-1", "QTTS_MAX_TEXT_CHARS=-1"),
    ("QTTS_MAX_UPLOAD_BYTES", "-1", "QTTS_MAX_UPLOAD_BYTES=-1"),
    ("QTTS_MAX_REFERENCE_S", "nan", "QTTS_MAX_REFERENCE_S=nan"),
    ("QTTS_CPU_THREADS", "100000", "cpu_threads must be 0-512 (0: one per core)"),
    ("QTTS_ENGINE_IDLE_S", "0", "engine_idle_s must be more than 0"),
    ("QTTS_SPLIT_MAX_CHARS", "1e9", "QTTS_SPLIT_MAX_CHARS"),
])
def test_a_setting_out_of_range_is_refused_naming_its_source(tmp_path, name, value, message):
    with pytest.raises(BadInput) as info:
        Settings.resolve({}, environ={"QTTS_HOME": str(tmp_path), name: value})
    assert message in info.value.message and info.value.hint


def test_the_same_range_holds_for_a_flag_and_the_config_file(tmp_path):
    (tmp_path / "config.toml").write_text("batch_size = 40\n")
    with pytest.raises(BadInput, match=r"config.toml: batch_size=40: batch_size must be 1-16"):
        Settings.resolve({}, environ={"QTTS_HOME": str(tmp_path)})
    with pytest.raises(BadInput, match=r"--cpu-threads=9999"):
        Settings.resolve({"cpu_threads": 9999}, environ={"QTTS_HOME": str(tmp_path / "other")})
    directory = tmp_path / "conf.d"
    directory.mkdir()
    with pytest.raises(BadInput, match="is not a file"):
        Settings.resolve({}, environ={"QTTS_HOME": str(tmp_path / "x"), "QTTS_CONFIG": str(directory)})


@pytest.mark.parametrize("flag, value", [("--temperature", "nan"), ("--repetition-penalty", "nan"),
                                         ("--top-p", "nan"), ("--timeout", "inf"), ("--temperature", "inf")])
def test_non_finite_flags_are_refused_before_anything_loads(tiny_env, reference_clip, tmp_path, flag, value):
    result = run("speak", "--ref-audio", str(reference_clip), *CLIP_ARGS, flag, value, "--out", str(tmp_path / "x.wav"))
    assert result.exit_code == 2 and "is not a finite number" in result.stderr and "Traceback" not in result.stderr


def test_stdout_to_a_full_device_is_disk_full_and_a_closed_pipe_an_output_error(tiny_env, reference_clip):
    args = ("--ref-audio", str(reference_clip), *CLIP_ARGS, "--max-frames", "40", "--seed", "1")
    with open("/dev/full", "wb") as full:
        for extra in ((), ("--stream",)):
            result = _speak(*args, *extra, "--out", "-", stdout=full)
            assert result.returncode == 9, result.stderr.decode()
            assert b"no space left to write the audio to stdout" in result.stderr and b"Traceback" not in result.stderr
    story = " ".join(f"This is sentence number {n} of the story." for n in range(10))
    long = ("--ref-audio", str(reference_clip), "--ref-text", "Hello there.", "--text", story, "--split-max-chars",
            "45", "--max-frames", "60", "--seed", "1")  # several chunks: far more than a pipe's 64 KB
    for extra in ((), ("--stream",)):
        reader = subprocess.Popen([sys.executable, "-m", "qtts", "speak", *long, *extra, "--out", "-"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
        reader.stdout.read(100)
        reader.stdout.close()  # the reader goes away, as '| head -c 100' does
        _, err = reader.communicate(timeout=300)
        assert reader.returncode == 11, err.decode()
        assert b"could not write the audio to stdout: Broken pipe" in err
        assert b"Traceback" not in err and b"terminate called" not in err


def test_format_and_extension_that_disagree_are_refused(tiny_env, reference_clip, tmp_path):
    result = run("speak", "--ref-audio", str(reference_clip), *CLIP_ARGS, "--out", str(tmp_path / "x.wav"),
                 "--format", "mp3")
    assert result.exit_code == 2 and "--format mp3 does not match the file name" in result.stderr
    assert not (tmp_path / "x.wav").exists()


def test_http_numbers_past_their_range_are_400_and_store_nothing(service_url):
    huge = httpx.get(f"{service_url}/v1/jobs", params={"offset": "99999999999999999999"})
    assert huge.status_code == 400
    before = httpx.get(f"{service_url}/v1/jobs").json()["total"]
    for body in ('{"input": "Hi.", "voice": "alice", "timeout_s": Infinity}',
                 '{"input": "Hi.", "voice": "alice", "timeout_s": NaN}',
                 '{"input": "Hi.", "voice": "alice", "timeout_s": 1e300}'):
        answer = httpx.post(f"{service_url}/v1/jobs", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, answer.text
    speech = httpx.post(f"{service_url}/v1/audio/speech", content='{"model": "tts-1", "input": "Hi.", '
                        '"voice": "alice", "speed": NaN}', headers={"Content-Type": "application/json"})
    assert speech.status_code == 400
    assert httpx.get(f"{service_url}/v1/jobs").json()["total"] == before  # nothing was created


def test_no_5xx_after_a_job_was_stored_even_if_describing_it_fails(service_url, monkeypatch):
    """A failure injected into the response's serialization, after the job is stored: the
    answer is still the job (202 with its id), never a 5xx that a client would retry."""
    from qtts.jobs.job import Job

    real = Job.to_public
    monkeypatch.setattr(Job, "to_public", lambda self: (_ for _ in ()).throw(RuntimeError("injected")))
    answer = httpx.post(f"{service_url}/v1/jobs", json={"input": "Hi there.", "voice": "alice", "max_frames": 4})
    monkeypatch.setattr(Job, "to_public", real)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    assert answer.headers["Location"] == f"/v1/jobs/{job_id}"
    assert httpx.get(f"{service_url}/v1/jobs/{job_id}").json()["id"] == job_id  # it exists, as answered
    # Bad input is refused before anything is stored, whatever the serializer does.
    before = httpx.get(f"{service_url}/v1/jobs").json()["total"]
    monkeypatch.setattr(Job, "to_public", lambda self: (_ for _ in ()).throw(RuntimeError("injected")))
    refused = httpx.post(f"{service_url}/v1/jobs", json={"input": "", "voice": "alice"})
    monkeypatch.setattr(Job, "to_public", real)
    assert refused.status_code == 400 and httpx.get(f"{service_url}/v1/jobs").json()["total"] == before
