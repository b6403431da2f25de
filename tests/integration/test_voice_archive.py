"""Portable voices: ``qtts clone export`` / ``import`` and their HTTP twins, through real
qwen_tts on the tiny checkpoint; import as a hostile-input boundary."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.integration.helpers import run

SPEAK = ("--greedy", "--max-frames", "8", "--text", "The same words in the same voice.")


@pytest.fixture()
def exported(tiny_env, reference_clip, tmp_path) -> Path:
    created = run("clone", "create", "--voice-id", "narrator", "--ref-audio", str(reference_clip), "--ref-text",
                  "This is my reference clip.")
    assert created.exit_code == 0, created.stderr
    file = tmp_path / "narrator.qtts-voice"
    result = run("clone", "export", "narrator", str(file))
    assert result.exit_code == 0 and file.is_file(), result.stderr
    return file


def _other_home(monkeypatch, tmp_path) -> Path:  # noqa: ANN001
    home = tmp_path / "another-home"
    monkeypatch.setenv("QTTS_HOME", str(home))
    return home


def test_an_exported_voice_speaks_identically_in_another_home(exported, tmp_path, monkeypatch):
    here = tmp_path / "here.wav"
    assert run("speak", "--voice-id", "narrator", *SPEAK, "--out", str(here)).exit_code == 0
    home = _other_home(monkeypatch, tmp_path)
    imported = run("clone", "import", str(exported), "--json")
    assert imported.exit_code == 0, imported.stderr
    voice = json.loads(imported.stdout)
    assert voice["voice_id"] == "narrator" and voice["mode"] == "icl" and voice["families"]
    there = tmp_path / "there.wav"
    assert run("speak", "--voice-id", "narrator", *SPEAK, "--out", str(there)).exit_code == 0
    assert here.read_bytes() == there.read_bytes()
    assert sorted(p.name for p in (home / "voices").iterdir()) == ["narrator"]
    renamed = run("clone", "import", str(exported), "--voice-id", "copy")
    assert renamed.exit_code == 0 and run("clone", "show", "copy").exit_code == 0
    again = run("clone", "import", str(exported))
    assert again.exit_code == 2 and "already exists" in again.stderr


def _rewrite(source: Path, target: Path, change) -> Path:  # noqa: ANN001
    """A copy of the archive with its members changed by ``change(dict) -> dict``."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in change(members).items():
            archive.writestr(name, data)
    return target


def _nan_clip() -> bytes:
    samples = np.zeros(24000, dtype=np.float32)
    samples[100] = np.nan
    buffer = io.BytesIO()
    sf.write(buffer, samples, 24000, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


HOSTILE = {
    "path traversal": (lambda m: {**m, "../evil.txt": b"x"}, "unexpected member"),
    "absolute path": (lambda m: {**m, "/etc/cron.d/x": b"x"}, "unexpected member"),
    "nested path": (lambda m: {**{k: v for k, v in m.items() if k != "meta.json"}, "voices/meta.json": m["meta.json"]},
                    "unexpected member"),
    "wrong version": (lambda m: {**m, "qvoice.json": json.dumps({"format": "qtts-voice", "version": 99}).encode()},
                      "version 99"),
    "another format": (lambda m: {**m, "qvoice.json": b'{"format": "zip"}'}, "not a qtts voice file"),
    "no clip": (lambda m: {k: v for k, v in m.items() if k != "reference.wav"}, "no reference.wav"),
    "a NaN clip": (lambda m: {**m, "reference.wav": _nan_clip()}, "NaN"),
    "bad meta": (lambda m: {**m, "meta.json": b"[1, 2]"}, "not a JSON object"),
    "bad voice id": (lambda m: {**m, "meta.json": json.dumps({**json.loads(m["meta.json"]),
                                                              "voice_id": "../x"}).encode()}, "invalid voice id"),
    "corrupt prompt": (lambda m: {**m, **{k: b"garbage" for k in m if k.startswith("prompt.")}}, "cannot be read"),
    "prompt of another mode": (lambda m: {**m, "meta.json": json.dumps({**json.loads(m["meta.json"]),
                                                                         "mode": "x_vector"}).encode()},
                               "does not match"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_voice_file_is_refused_and_nothing_is_imported(exported, tmp_path, monkeypatch, case):
    change, message = HOSTILE[case]
    bad = _rewrite(exported, tmp_path / "bad.qtts-voice", change)
    home = _other_home(monkeypatch, tmp_path)
    result = run("clone", "import", str(bad))
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and "hint:" in result.stderr
    voices = home / "voices"
    assert not voices.exists() or list(voices.iterdir()) == []  # no voice, no staging left behind


@pytest.mark.parametrize("damage", ["truncated", "random bytes", "empty"])
def test_a_corrupt_or_truncated_file_is_refused(exported, tmp_path, monkeypatch, damage):
    data = exported.read_bytes()
    bad = tmp_path / "bad.qtts-voice"
    bad.write_bytes({"truncated": data[: len(data) // 2], "random bytes": np.random.RandomState(0).bytes(4096),
                     "empty": b""}[damage])
    _other_home(monkeypatch, tmp_path)
    result = run("clone", "import", str(bad))
    assert result.exit_code == 2 and "corrupt or truncated" in result.stderr


def test_an_oversized_member_is_refused_before_it_is_read_whole(exported, tmp_path, monkeypatch):
    from qtts import voice_archive

    monkeypatch.setitem(voice_archive._CAPS, "reference.wav", 1000)
    _other_home(monkeypatch, tmp_path)
    result = run("clone", "import", str(exported))
    assert result.exit_code == 2 and "the limit is 1000" in result.stderr


def test_export_and_import_over_http(service_url, library_voice):
    exported = httpx.get(f"{service_url}/v1/audio/voices/{library_voice}/export")
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
    assert f'filename="{library_voice}.qtts-voice"' in exported.headers["content-disposition"]
    created = httpx.post(f"{service_url}/v1/audio/voices/import", files={"file": ("v.qtts-voice", exported.content)},
                         data={"voice_id": "copied"})
    assert created.status_code == 201 and created.json()["id"] == "copied"
    assert httpx.get(f"{service_url}/v1/audio/voices/copied").status_code == 200
    clash = httpx.post(f"{service_url}/v1/audio/voices/import", files={"file": ("v.qtts-voice", exported.content)},
                       data={"voice_id": "copied"})
    assert clash.status_code == 400 and "already exists" in clash.json()["error"]["message"]
    junk = httpx.post(f"{service_url}/v1/audio/voices/import", files={"file": ("v.qtts-voice", b"not a zip")})
    assert junk.status_code == 400 and "corrupt or truncated" in junk.json()["error"]["message"]
    missing = httpx.get(f"{service_url}/v1/audio/voices/nobody/export")
    assert missing.status_code == 404
