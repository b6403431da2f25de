"""qtts batch through real qwen_tts on the tiny checkpoint: manifest, bad lines, resume, via queue."""

import json

import soundfile as sf

from tests.integration.helpers import run

MIXED = "\n".join([
    json.dumps({"id": "intro", "text": "Welcome to the show."}),
    "{this is not json",
    json.dumps({"id": "second", "text": "The second item.", "format": "flac"}),
    json.dumps({"id": "empty", "text": "   "}),
    json.dumps({"id": "ghost", "text": "Unknown voice.", "voice": "ghost"}),
    json.dumps({"id": "bad/id", "text": "Bad id."}),
    json.dumps({"id": "third", "text": "你好，世界。", "language": "Chinese"}),
]) + "\n"


def _manifest(out_dir):
    return [json.loads(line) for line in (out_dir / "manifest.jsonl").read_text().splitlines()]


def test_mixed_input_produces_files_and_a_manifest(tiny_env, reference_clip, tmp_path):
    assert run("clone", "create", "--voice-id", "narrator", "--ref-audio", str(reference_clip),
               "--x-vector-only").exit_code == 0
    source = tmp_path / "items.jsonl"
    source.write_text(MIXED, encoding="utf-8")
    out_dir = tmp_path / "out"
    result = run("batch", "--input", str(source), "--out-dir", str(out_dir), "--voice-id", "narrator",
                 "--seed", "1", "--max-frames", "12", "--json")
    assert result.exit_code == 1  # some lines were bad
    assert json.loads(result.stdout) == {"ok": 3, "failed": 1, "skipped": 0, "invalid": 3,
                                         "manifest": str(out_dir / "manifest.jsonl")}
    assert "line 2: skipped: not valid JSON" in result.stderr
    assert "line 4: skipped: empty or missing 'text'" in result.stderr
    assert "line 6: skipped: invalid id" in result.stderr
    assert sorted(p.name for p in out_dir.iterdir()) == ["intro.wav", "manifest.jsonl", "second.flac", "third.wav"]
    assert sf.info(str(out_dir / "second.flac")).samplerate == 24000
    records = {r.get("id"): r for r in _manifest(out_dir)}
    assert records["intro"]["status"] == "ok" and records["intro"]["audio_seconds"] > 0 and records["intro"]["rtf"] > 0
    assert records["ghost"]["status"] == "error" and records["ghost"]["error"]["category"] == "not_found"

    recorded = len(_manifest(out_dir))
    rerun = run("batch", "--input", str(source), "--out-dir", str(out_dir), "--voice-id", "narrator", "--json")
    assert json.loads(rerun.stdout)["skipped"] == 3 and json.loads(rerun.stdout)["ok"] == 0
    assert len(_manifest(out_dir)) == recorded + 1  # only the retried failure; bad lines are recorded once


def test_txt_and_csv_inputs(tiny_env, reference_clip, tmp_path):
    run("clone", "create", "--voice-id", "narrator", "--ref-audio", str(reference_clip), "--x-vector-only")
    txt = tmp_path / "lines.txt"
    txt.write_text("First line.\n\nSecond line.\n", encoding="utf-8")
    result = run("batch", "--input", str(txt), "--out-dir", str(tmp_path / "t"), "--voice-id", "narrator",
                 "--max-frames", "6")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "t").glob("*.wav")) == ["00001.wav", "00003.wav"]
    csv_file = tmp_path / "items.csv"
    csv_file.write_text("id,text,format\na,Hello there.,mp3\nb,,wav\n", encoding="utf-8")
    result = run("batch", "--input", str(csv_file), "--out-dir", str(tmp_path / "c"), "--voice-id", "narrator",
                 "--max-frames", "6")
    assert result.exit_code == 1 and "line 3: skipped" in result.stderr
    assert (tmp_path / "c" / "a.mp3").is_file()


def test_resume_after_an_interruption_redoes_only_missing_items(tiny_env, reference_clip, tmp_path):
    run("clone", "create", "--voice-id", "narrator", "--ref-audio", str(reference_clip), "--x-vector-only")
    txt = tmp_path / "lines.txt"
    txt.write_text("One.\nTwo.\nThree.\n", encoding="utf-8")
    out_dir = tmp_path / "o"
    assert run("batch", "--input", str(txt), "--out-dir", str(out_dir), "--voice-id", "narrator",
               "--max-frames", "4").exit_code == 0
    (out_dir / "00002.wav").unlink()  # as if lost
    with (out_dir / "manifest.jsonl").open("a") as manifest:
        manifest.write('{"id": "000')  # a line cut short by a crash
    result = run("batch", "--input", str(txt), "--out-dir", str(out_dir), "--voice-id", "narrator",
                 "--max-frames", "4", "--json")
    assert json.loads(result.stdout)["ok"] == 1 and json.loads(result.stdout)["skipped"] == 2
    again = run("batch", "--input", str(txt), "--out-dir", str(out_dir), "--voice-id", "narrator", "--json")
    assert json.loads(again.stdout)["skipped"] == 3


def test_via_queue(service_url, library_voice, tmp_path):
    txt = tmp_path / "lines.txt"
    txt.write_text("Queued one.\nQueued two.\n", encoding="utf-8")
    result = run("batch", "--input", str(txt), "--out-dir", str(tmp_path / "q"), "--voice-id", library_voice,
                 "--max-frames", "6", "--via-queue", "--server", service_url, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["ok"] == 2
    assert len(list((tmp_path / "q").glob("*.wav"))) == 2


def test_missing_input_file(tiny_env, tmp_path):
    result = run("batch", "--input", str(tmp_path / "none.txt"), "--out-dir", str(tmp_path / "x"), "--voice-id", "v")
    assert result.exit_code == 2 and "does not exist" in result.stderr
