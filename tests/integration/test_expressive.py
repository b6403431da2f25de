"""Pauses, per-span switches, speed, subtitles and numbers, through real qwen_tts on the tiny
checkpoints: the CLI's speak and batch here; the jobs API and the OpenAI endpoint in
test_expressive_http.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from tests.integration.helpers import GAP_SAMPLES, SAMPLES_PER_FRAME, run, run_json

RATE = 24000


def clip_args(reference_clip) -> tuple[str, ...]:  # noqa: ANN001
    return ("--ref-audio", str(reference_clip), "--x-vector-only", "--greedy", "--max-frames", "6")


def test_a_pause_inserts_exactly_that_much_silence_and_is_never_spoken(tiny_env, reference_clip, tmp_path):
    out = tmp_path / "paused.wav"
    text = 'First part. [pause:700ms] Second part. <break time="1.5s"/> Third [pause:0.25s][pause:50ms] end.'
    summary = run_json("speak", *clip_args(reference_clip), "--text", text, "--out", str(out))
    chunks = summary["chunks"]
    assert [c["text"] for c in chunks] == ["First part.", "Second part.", "Third", "end."]
    samples, rate = sf.read(out)
    frames = [c["frames"] for c in chunks]
    pauses = [0.7, 1.5, 0.3]
    progress = run("speak", *clip_args(reference_clip), "--text", text, "--out", str(tmp_path / "again.wav"))
    assert [line.split(":")[0] for line in progress.stderr.splitlines() if line.startswith("chunk ")] == [
        "chunk 1/4", "chunk 2/4", "chunk 3/4", "chunk 4/4"]  # counted over the whole text
    assert len(samples) == sum(frames) * SAMPLES_PER_FRAME + round(sum(pauses) * RATE)
    for before, after, pause in zip(chunks, chunks[1:], pauses):
        assert after["start"] == pytest.approx(before["end"] + pause, abs=1e-3)
        gap = samples[round(before["end"] * RATE):round(after["start"] * RATE)]
        assert len(gap) == round(pause * RATE) and not gap.any()  # silence, exactly that long
    assert chunks[-1]["end"] == pytest.approx(len(samples) / RATE, abs=1e-3)


def test_other_bracket_and_angle_text_is_spoken_verbatim(tiny_env, reference_clip, tmp_path):
    text = "Note [1] and <b>bold</b> and [Pause:1s] stay."
    summary = run_json("speak", *clip_args(reference_clip), "--text", text, "--out", str(tmp_path / "v.wav"))
    assert [c["text"] for c in summary["chunks"]] == [text]


def test_no_markup_reads_the_tags_as_text(tiny_env, reference_clip, tmp_path):
    text = "Wait [pause:500ms] here."
    summary = run_json("speak", *clip_args(reference_clip), "--no-markup", "--text", text,
                       "--out", str(tmp_path / "n.wav"))
    assert [c["text"] for c in summary["chunks"]] == [text]


@pytest.mark.parametrize("tag, message", [
    ("[pause:-3s]", "malformed pause"),
    ("[pause:61s]", "longer than 60 s"),
    ("[pause:fast]", "malformed pause"),
    ('<break time="soon"/>', "malformed pause"),
    ("<break/>", "malformed pause"),
])
def test_a_malformed_pause_is_a_clear_input_error(tiny_env, reference_clip, tmp_path, tag, message):
    out = tmp_path / "bad.wav"
    result = run("speak", *clip_args(reference_clip), "--text", f"Hello {tag} there.", "--out", str(out))
    assert result.exit_code == 2 and message in result.stderr and "hint:" in result.stderr
    assert not out.exists()


def test_a_text_of_only_pauses_has_nothing_to_speak(tiny_env, reference_clip, tmp_path):
    result = run("speak", *clip_args(reference_clip), "--text", "[pause:1s] . [pause:1s]",
                 "--out", str(tmp_path / "p.wav"))
    assert result.exit_code == 2 and "nothing to speak" in result.stderr


def test_speed_changes_the_length_and_the_chunk_times_follow(tiny_env, reference_clip, tmp_path):
    base = run_json("speak", *clip_args(reference_clip), "--max-frames", "20", "--text", "One. [pause:500ms] Two.",
                    "--out", str(tmp_path / "a.wav"))
    fast = run_json("speak", *clip_args(reference_clip), "--max-frames", "20", "--speed", "2",
                    "--text", "One. [pause:500ms] Two.", "--out", str(tmp_path / "b.wav"))
    assert [c["frames"] for c in fast["chunks"]] == [c["frames"] for c in base["chunks"]]  # same codes, greedy
    speech = [c["end"] - c["start"] for c in base["chunks"]]
    fast_speech = [c["end"] - c["start"] for c in fast["chunks"]]
    for slow, quick in zip(speech, fast_speech):
        assert quick == pytest.approx(slow / 2, abs=0.01)
    # the written pause stays as written
    assert fast["chunks"][1]["start"] - fast["chunks"][0]["end"] == pytest.approx(0.5, abs=1e-3)
    samples, _ = sf.read(tmp_path / "b.wav")
    assert fast["chunks"][-1]["end"] == pytest.approx(len(samples) / RATE, abs=1e-3)


@pytest.mark.parametrize("speed", ["0.4", "2.5", "nan"])
def test_speed_out_of_range_is_refused(tiny_env, reference_clip, tmp_path, speed):
    result = run("speak", *clip_args(reference_clip), "--speed", speed, "--text", "Hi.", "--out",
                 str(tmp_path / "s.wav"))
    assert result.exit_code == 2 and "--speed" in result.stderr


@pytest.mark.parametrize("suffix", ["srt", "vtt"])
def test_subtitles_are_timed_from_the_chunks(tiny_env, reference_clip, tmp_path, suffix):
    subtitles = tmp_path / f"talk.{suffix}"
    summary = run_json("speak", *clip_args(reference_clip), "--text",
                       "The first sentence here. [pause:1s] The second one.", "--subtitles", str(subtitles),
                       "--out", str(tmp_path / "talk.wav"))
    text = subtitles.read_text()
    stamps = [line for line in text.splitlines() if "-->" in line]
    assert len(stamps) == len(summary["chunks"]) == 2
    separator = "," if suffix == "srt" else "."
    for stamp, chunk in zip(stamps, summary["chunks"]):
        start, end = stamp.split(" --> ")
        assert start == _stamp(chunk["start"], separator) and end == _stamp(chunk["end"], separator)
    assert text.startswith("WEBVTT" if suffix == "vtt" else "1\n")
    assert "The first sentence here." in text and "[pause" not in text


def test_subtitles_need_a_whole_file_and_a_known_extension(tiny_env, reference_clip, tmp_path):
    result = run("speak", *clip_args(reference_clip), "--text", "Hi.", "--subtitles", str(tmp_path / "s.txt"),
                 "--out", str(tmp_path / "s.wav"))
    assert result.exit_code == 2 and ".srt or .vtt" in result.stderr
    result = run("speak", *clip_args(reference_clip), "--text", "Hi.", "--subtitles", str(tmp_path / "s.srt"),
                 "--out", "-", "--stream")
    assert result.exit_code == 2 and "--subtitles" in result.stderr


def test_read_numbers_speaks_words_and_shows_them_beside_the_verbatim_chunk(tiny_env, reference_clip, tmp_path):
    text = "It costs $12.50 on May 3rd, 1999 at 10:05."
    plain = run_json("speak", *clip_args(reference_clip), "--language", "English", "--text", text,
                     "--out", str(tmp_path / "a.wav"))
    assert "spoken" not in plain["chunks"][0]  # off by default: the text goes verbatim
    read = run_json("speak", *clip_args(reference_clip), "--language", "English", "--read-numbers", "--text", text,
                    "--out", str(tmp_path / "b.wav"))
    chunk = read["chunks"][0]
    assert chunk["text"] == text
    assert chunk["spoken"] == "It costs twelve dollars, fifty cents on May third, nineteen ninety-nine at ten oh five."


def test_a_speaker_switch_mid_text_on_customvoice(tiny_custom_model, tmp_path):
    args = ("--model-id", str(tiny_custom_model), "--greedy", "--max-frames", "8")
    switched = run_json("speak", *args, "--speaker", "ryan", "--text", "Hello there. [speaker: vivian] Hi again.",
                        "--out", str(tmp_path / "s.wav"))
    run_json("speak", *args, "--speaker", "vivian", "--text", "Hi again.", "--out", str(tmp_path / "v.wav"))
    assert [c["text"] for c in switched["chunks"]] == ["Hello there.", "Hi again."]
    switched_audio, _ = sf.read(tmp_path / "s.wav")
    alone_audio, _ = sf.read(tmp_path / "v.wav")
    start = round(switched["chunks"][1]["start"] * RATE)
    # the second part is spoken by vivian: the same samples as vivian alone (greedy)
    np.testing.assert_array_equal(switched_audio[start:], alone_audio)
    run_json("speak", *args, "--speaker", "ryan", "--text", "Hi again.", "--out", str(tmp_path / "r.wav"))
    ryan_audio, _ = sf.read(tmp_path / "r.wav")
    assert len(ryan_audio) != len(alone_audio) or not np.array_equal(ryan_audio, alone_audio)  # not ryan's
    assert switched["chunks"][1]["start"] - switched["chunks"][0]["end"] == pytest.approx(GAP_SAMPLES / RATE)


def test_a_style_switch_on_customvoice_and_a_refused_tag(tiny_custom_model, tiny_model, reference_clip, tmp_path):
    args = ("--model-id", str(tiny_custom_model), "--speaker", "ryan", "--greedy", "--max-frames", "6")
    summary = run_json("speak", *args, "--text", "Calm words. [style: whispering, slower] Quiet words.",
                       "--out", str(tmp_path / "a.wav"))
    assert len(summary["chunks"]) == 2
    styled, _ = sf.read(tmp_path / "a.wav")
    run_json("speak", *args, "--instruct", "whispering, slower", "--text", "Quiet words.",
             "--out", str(tmp_path / "styled.wav"))
    run_json("speak", *args, "--text", "Quiet words.", "--out", str(tmp_path / "plain.wav"))
    alone, _ = sf.read(tmp_path / "styled.wav")
    plain, _ = sf.read(tmp_path / "plain.wav")
    # the second part is spoken with the instruction, as --instruct alone would (greedy), not without it
    np.testing.assert_array_equal(styled[round(summary["chunks"][1]["start"] * RATE):], alone)
    assert len(plain) != len(alone) or not np.array_equal(plain, alone)
    refused = run("speak", "--model-id", str(tiny_model), *clip_args(reference_clip), "--text",
                  "Hello. [speaker: ryan] Hi.", "--out", str(tmp_path / "b.wav"))
    assert refused.exit_code == 2 and "CustomVoice" in refused.stderr  # the kind rules of --speaker
    unknown = run("speak", "--model-id", str(tiny_custom_model), "--speaker", "ryan", "--text",
                  "Hello. [speaker: nobody] Hi.", "--out", str(tmp_path / "c.wav"))
    assert unknown.exit_code == 2 and "no speaker 'nobody'" in unknown.stderr


def test_a_voice_switch_on_base_uses_the_library(tiny_env, reference_clip, tmp_path):
    import soxr

    clip, rate = sf.read(reference_clip)
    other_clip = tmp_path / "other.wav"
    sf.write(other_clip, soxr.resample(clip, rate, int(rate / 1.5)), rate)  # another voice: 1.5x higher
    for name, source in (("alice", reference_clip), ("bob", other_clip)):
        assert run("clone", "create", "--voice-id", name, "--ref-audio", str(source), "--x-vector-only",
                   "--seed", "1").exit_code == 0
    args = ("--greedy", "--max-frames", "6")
    switched = run_json("speak", "--voice-id", "alice", *args, "--text", "From Alice. [voice: bob] From Bob.",
                        "--out", str(tmp_path / "ab.wav"))
    assert len(switched["chunks"]) == 2
    start = round(switched["chunks"][1]["start"] * RATE)
    switched_audio, _ = sf.read(tmp_path / "ab.wav")
    for name in ("alice", "bob"):
        run_json("speak", "--voice-id", name, *args, "--text", "From Bob.", "--out", str(tmp_path / f"{name}.wav"))
    bob, _ = sf.read(tmp_path / "bob.wav")
    alice, _ = sf.read(tmp_path / "alice.wav")
    np.testing.assert_array_equal(switched_audio[start:], bob)  # the second part in bob's voice (greedy)
    assert len(alice) != len(bob) or not np.array_equal(alice, bob)  # and the two voices differ
    missing = run("speak", "--voice-id", "alice", *args, "--text", "Hi. [voice: carol] Hi.",
                  "--out", str(tmp_path / "c.wav"))
    assert missing.exit_code != 0 and "carol" in missing.stderr and not (tmp_path / "c.wav").exists()


def test_batch_writes_subtitles_per_item_and_takes_the_expressive_flags(tiny_env, reference_clip, tmp_path):
    created = run("clone", "create", "--voice-id", "me", "--ref-audio", str(reference_clip), "--x-vector-only")
    assert created.exit_code == 0
    items = tmp_path / "items.jsonl"
    items.write_text("\n".join(json.dumps(i) for i in [{"id": "a", "text": "One. [pause:500ms] Two."},
                                                       {"id": "b", "text": "Item 2 costs 5%."}]) + "\n")
    out = tmp_path / "out"
    result = run("batch", "--input", str(items), "--out-dir", str(out), "--voice-id", "me", "--max-frames", "6",
                 "--speed", "1.25", "--read-numbers", "--language", "English", "--subtitles", "vtt")
    assert result.exit_code == 0, result.stderr
    for item in ("a", "b"):
        assert (out / f"{item}.wav").is_file() and (out / f"{item}.vtt").read_text().startswith("WEBVTT")
    assert "Two." in (out / "a.vtt").read_text()


def _stamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    return f"{millis // 3600000:02d}:{millis // 60000 % 60:02d}:{millis // 1000 % 60:02d}{separator}{millis % 1000:03d}"


def test_a_chunk_that_ends_at_end_of_speech_keeps_its_last_frames(tiny_env, reference_clip, tmp_path):
    """Peers report a cut tail: every frame the model made up to its end-of-speech token is in
    the file, up to the last sample, after decoding and joining."""
    out = tmp_path / "tail.wav"
    summary = run_json("speak", *clip_args(reference_clip), "--max-frames", "40", "--text", "Hello there.",
                       "--out", str(out))
    (chunk,) = summary["chunks"]
    assert 0 < chunk["frames"] < 40 and not chunk["retried"]  # it ended by itself (seeded, greedy)
    samples, _ = sf.read(out)
    assert len(samples) == chunk["frames"] * SAMPLES_PER_FRAME
    assert np.abs(samples[-SAMPLES_PER_FRAME:]).max() > 0  # the last frame's audio is there, not silence
