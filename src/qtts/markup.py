"""Inline markup in the text: pauses and switches of speaker, style or voice.

Only these exact forms are markup; any other bracket or angle text is spoken verbatim:

- ``[pause:500ms]``, ``[pause:1.5s]`` and SSML's ``<break time="500ms"/>``: exactly that much
  silence at that point (at most ``MAX_PAUSE_S`` each);
- ``[speaker: ryan]`` (CustomVoice), ``[style: whispering, slower]`` (CustomVoice 1.7B,
  VoiceDesign) and ``[voice: other-id]`` (Base, a library voice): from that point on; an empty
  value (``[style:]``) goes back to the request's own.

A tag that starts like markup but does not parse (``[pause:-3s]``, ``<break time="x"/>``) is
bad input, so that a typo is not read aloud.  ``parse(text, markup=False)`` keeps the text
whole (``--no-markup``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qtts.errors import BadInput

MAX_PAUSE_S = 60.0
MAX_TOTAL_PAUSE_S = 600.0

_TAG = re.compile(
    r"\[(?P<kind>pause|speaker|style|voice):(?P<value>[^\[\]]*)\]"
    r"|<break\b(?P<attrs>[^<>]*?)/?>",
)
_DURATION = re.compile(r"\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ms|s)\s*")
_TIME_ATTR = re.compile(r"""^\s*time\s*=\s*(?P<quote>["'])(?P<value>[^"']*)(?P=quote)\s*$""")


@dataclass(frozen=True)
class Speech:
    """Text to speak, with the switches in force where it stands (None: the request's own)."""

    text: str
    speaker: str | None = None
    style: str | None = None
    voice_id: str | None = None


@dataclass(frozen=True)
class Pause:
    seconds: float


Part = Speech | Pause


def parse(text: str, markup: bool = True) -> list[Part]:
    """The text as speech and pauses in order; adjacent pauses are added together and text
    with nothing but whitespace between two tags is dropped."""
    if not markup:
        return [Speech(text)]
    parts: list[Part] = []
    state: dict[str, str | None] = {"speaker": None, "style": None, "voice_id": None}
    position = 0
    for match in _TAG.finditer(text):
        _add_speech(parts, text[position:match.start()], state)
        position = match.end()
        kind = match.group("kind")
        if kind is None or kind == "pause":
            raw = match.group("value") if kind == "pause" else _break_time(match.group(0), match.group("attrs"))
            _add_pause(parts, _seconds(raw, match.group(0)))
        else:
            value = " ".join(match.group("value").split()) or None
            state["voice_id" if kind == "voice" else kind] = value
    _add_speech(parts, text[position:], state)
    total = sum(p.seconds for p in parts if isinstance(p, Pause))
    if total > MAX_TOTAL_PAUSE_S:
        raise BadInput(f"the pauses in the text add up to {total:g} s; the limit is {MAX_TOTAL_PAUSE_S:g} s",
                       hint="shorten the pauses, or split the text into several requests")
    return parts


def has_markup(text: str) -> bool:
    return _TAG.search(text) is not None


def _add_speech(parts: list[Part], text: str, state: dict[str, str | None]) -> None:
    if text.strip():
        parts.append(Speech(text.strip(), state["speaker"], state["style"], state["voice_id"]))


def _add_pause(parts: list[Part], seconds: float) -> None:
    if parts and isinstance(parts[-1], Pause):
        parts[-1] = Pause(parts[-1].seconds + seconds)
    else:
        parts.append(Pause(seconds))


def _break_time(tag: str, attrs: str) -> str:
    found = _TIME_ATTR.match(attrs or "")
    if found is None:
        raise BadInput(f"malformed pause {tag!r}", hint='write it as <break time="500ms"/> or <break time="1.5s"/>')
    return found.group("value")


def _seconds(raw: str, tag: str) -> float:
    found = _DURATION.fullmatch(raw)
    if found is None:
        raise BadInput(f"malformed pause {tag!r}",
                       hint="write a duration in ms or s, e.g. [pause:500ms] or [pause:1.5s]; "
                            "use --no-markup to read brackets as text")
    seconds = float(found.group("number")) / (1000.0 if found.group("unit") == "ms" else 1.0)
    if seconds > MAX_PAUSE_S:
        raise BadInput(f"the pause {tag!r} is longer than {MAX_PAUSE_S:g} s",
                       hint=f"use pauses of at most {MAX_PAUSE_S:g} s each")
    return seconds
