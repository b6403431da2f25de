"""Subtitles from the chunks as they were synthesized: SRT and WebVTT.

A chunk's start and end are exact (they are where its audio lies in the output, gaps, pauses
and speed included).  A chunk may hold several sentences: they share its time in proportion
to their estimated speaking time, one cue each, and a cue longer than ``MAX_CUE_S`` is split
at its clause boundaries the same way.  The two formats are a few lines each, written here
(no kept library writes both).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qtts.errors import BadInput
from qtts.text import estimate_seconds, split_text

MAX_CUE_S = 7.0
FORMATS = ("srt", "vtt")


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    text: str


def cues(chunks: Iterable[Mapping[str, Any]]) -> list[Cue]:
    """Cues from chunk entries with ``text``, ``start`` and ``end`` (``--json``'s chunks)."""
    out: list[Cue] = []
    for chunk in chunks:
        start, end, text = float(chunk["start"]), float(chunk["end"]), str(chunk["text"])
        for sentence_start, sentence_end, sentence in _share(start, end, split_text(text, len(text) + 1, False)):
            if sentence_end - sentence_start <= MAX_CUE_S:
                out.append(Cue(sentence_start, sentence_end, sentence))
                continue
            width = max(20, int(len(sentence) * MAX_CUE_S / (sentence_end - sentence_start)))
            clauses = split_text(sentence, width, True)
            out.extend(Cue(a, b, t) for a, b, t in _share(sentence_start, sentence_end, clauses))
    return out


def _share(start: float, end: float, texts: list[str]) -> list[tuple[float, float, str]]:
    if not texts:
        return []
    weights = [max(estimate_seconds(t), 1e-3) for t in texts]
    total, position, shared = sum(weights), start, []
    for index, (text, weight) in enumerate(zip(texts, weights)):
        until = end if index == len(texts) - 1 else position + (end - start) * weight / total
        shared.append((position, until, text))
        position = until
    return shared


def render(items: list[Cue], fmt: str) -> str:
    """The cues as an SRT or a WebVTT file."""
    if fmt not in FORMATS:
        raise BadInput(f"unknown subtitle format {fmt!r}", hint="use srt or vtt")
    if fmt == "vtt":
        body = "".join(f"{_stamp(c.start_s, '.')} --> {_stamp(c.end_s, '.')}\n{c.text}\n\n" for c in items)
        return "WEBVTT\n\n" + body
    return "".join(f"{n}\n{_stamp(c.start_s, ',')} --> {_stamp(c.end_s, ',')}\n{c.text}\n\n"
                   for n, c in enumerate(items, 1))


def format_of(path: Path) -> str:
    """The subtitle format a file name asks for (.srt or .vtt)."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise BadInput(f"subtitles go to a .srt or .vtt file, not {path.name!r}",
                       hint="name the file e.g. speech.srt or speech.vtt")
    return fmt


def write_subtitles(path: Path, chunks: Iterable[Mapping[str, Any]], fmt: str | None = None) -> None:
    """The chunks' cues written to ``path`` atomically, in its format (or ``fmt``)."""
    from qtts.files import write_atomic

    write_atomic(path, render(cues(chunks), fmt or format_of(path)).encode("utf-8"))


def _stamp(seconds: float, comma: str) -> str:
    millis = int(round(max(0.0, seconds) * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{comma}{millis:03d}"
