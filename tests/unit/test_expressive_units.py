"""The pieces under the expressive controls, each against what it must do: the markup's
grammar, numbers as words, the stretch's length and pitch, subtitle cues."""

from __future__ import annotations

import numpy as np
import pytest

from qtts import markup, numbers, stretch, subtitles
from qtts.errors import BadInput


def test_markup_parts_in_order_with_switches_carried_forward():
    parts = markup.parse("A. [pause:1.5s][pause:500ms] B [speaker: Ryan] C [style:  calm,  slow ] D [style:] E "
                         '[voice: bob] F <break time="250ms" /> G')
    assert parts == [markup.Speech("A."), markup.Pause(2.0), markup.Speech("B"),
                     markup.Speech("C", speaker="Ryan"), markup.Speech("D", speaker="Ryan", style="calm, slow"),
                     markup.Speech("E", speaker="Ryan"), markup.Speech("F", speaker="Ryan", voice_id="bob"),
                     markup.Pause(0.25), markup.Speech("G", speaker="Ryan", voice_id="bob")]


@pytest.mark.parametrize("text", ["[note] x", "<b>x</b>", "[Pause:1s] x", "[pause 1s] x", "<breakfast> x",
                                  "a [ pause:1s] b", "[[pause]] x"])
def test_only_the_exact_forms_are_markup(text):
    assert markup.parse(text) == [markup.Speech(text.strip())]


@pytest.mark.parametrize("tag", ["[pause:-3s]", "[pause:1h]", "[pause:]", "[pause:60.5s]", '<break time="x"/>',
                                 "<break strength='weak'/>"])
def test_malformed_or_too_long_pauses_are_refused(tag):
    with pytest.raises(BadInput):
        markup.parse(f"a {tag} b")


def test_the_pauses_of_one_text_are_bounded():
    with pytest.raises(BadInput, match="add up"):
        markup.parse(" ".join(["x [pause:60s]"] * 11))


def test_no_markup_keeps_the_text_whole():
    assert markup.parse("a [pause:1s] b", markup=False) == [markup.Speech("a [pause:1s] b")]


@pytest.mark.parametrize("language, text, expected", [
    ("English", "Room 101 holds 1,500 people, 3.5% of them on the 2nd floor.",
     "Room one hundred and one holds one thousand, five hundred people, three point five percent of them on the "
     "second floor."),
    ("English", "MP3 files from 1999-2000, version 1.2.3, -4 degrees.",
     "MP3 files from nineteen ninety-nine-two thousand, version 1.2.3, minus four degrees."),
    ("German", "Es kostet 12,50 € und 1.234 Äpfel um 10:30.",
     "Es kostet zwölf Euro und fünfzig Cent und eintausendzweihundertvierunddreißig Äpfel um zehn Uhr dreißig."),
    ("French", "Le 1er mai, 1 234 pommes.", "Le premier mai, mille deux cent trente-quatre pommes."),
    ("Chinese", "增长了25%，共3.14元", "增长了百分之二十五，共三点一四元"),
    ("Japanese", "1,000円です。", "千円です。"),
    ("Auto", "I have 2 cats.", "I have two cats."),
])
def test_numbers_read_in_the_language(language, text, expected):
    assert numbers.spoken_numbers(text, language) == expected


def test_a_language_without_support_is_left_alone():
    assert numbers.spoken_numbers("1 2 3", "Klingon") is None and not numbers.supported("Klingon")
    assert numbers.supported("Sichuan_dialect") and numbers.supported("English")


def _f0(samples: np.ndarray, rate: int = 24000) -> float:
    """The fundamental of a steady tone: the autocorrelation's first peak."""
    frame = samples[len(samples) // 4: len(samples) // 4 + 4096]
    corr = np.correlate(frame, frame, "full")[len(frame) - 1:]
    low = rate // 400
    return rate / (low + int(np.argmax(corr[low: rate // 60])))


@pytest.mark.parametrize("speed", [0.5, 0.8, 1.25, 2.0])
def test_stretch_changes_length_not_pitch(speed):
    rate = 24000
    t = np.arange(rate * 2) / rate
    tone = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 6)).astype(np.float32) * 0.2
    out = stretch.stretch(tone, speed, rate)
    assert len(out) == pytest.approx(len(tone) / speed, abs=2)
    assert _f0(out) == pytest.approx(150, rel=0.02)


def test_stretch_prefers_rubberband_where_installed(monkeypatch):
    import shutil

    stretch.method.cache_clear()
    try:
        assert stretch.method() == ("rubberband" if shutil.which("rubberband") else "librosa")
        monkeypatch.setattr(shutil, "which", lambda name: None)
        stretch.method.cache_clear()
        assert stretch.method() == "librosa"
        tone = np.sin(np.arange(24000) / 24000 * 2 * np.pi * 200).astype(np.float32)
        assert len(stretch.stretch(tone, 2.0)) == 12000  # the fallback keeps the length too
    finally:
        stretch.method.cache_clear()


def test_cues_follow_sentences_and_split_long_ones_at_clauses():
    chunks = [{"text": "Short one. Another short one.", "start": 1.0, "end": 4.0},
              {"text": "A very long sentence, with several clauses, that keeps going, and going, until the end.",
               "start": 5.0, "end": 20.0}]
    cues = subtitles.cues(chunks)
    assert [c.text for c in cues[:2]] == ["Short one.", "Another short one."]
    assert cues[0].start_s == 1.0 and cues[1].end_s == 4.0 and cues[0].end_s == cues[1].start_s
    long_cues = cues[2:]
    assert len(long_cues) >= 3 and all(c.end_s - c.start_s <= subtitles.MAX_CUE_S + 1e-6 for c in long_cues)
    assert long_cues[0].start_s == 5.0 and long_cues[-1].end_s == 20.0
    assert " ".join(c.text for c in long_cues) == chunks[1]["text"]


def test_subtitle_formats():
    cues = [subtitles.Cue(0.0, 1.5, "Hello."), subtitles.Cue(3661.25, 3662.0, "Later.")]
    assert subtitles.render(cues, "srt") == ("1\n00:00:00,000 --> 00:00:01,500\nHello.\n\n"
                                             "2\n01:01:01,250 --> 01:01:02,000\nLater.\n\n")
    assert subtitles.render(cues, "vtt").startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello.\n")
