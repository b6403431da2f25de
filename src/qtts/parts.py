"""A request's text as the parts it is spoken in: each stretch of text between markup tags
becomes a request of its own (the switches in force applied to its voice and style), and
each pause a ``Pause``.  Checked before the model loads, like the request itself."""

from __future__ import annotations

from dataclasses import replace

from qtts.markup import Pause, Speech, parse
from qtts.request import SpeakRequest, VoiceSource
from qtts.text import is_speakable

Part = SpeakRequest | Pause


def split_parts(request: SpeakRequest) -> list[Part]:
    """The request's parts in order (one, the request itself, without markup)."""
    parts: list[Part] = []
    for item in parse(request.text, request.markup):
        if isinstance(item, Pause):
            parts.append(item)
        elif is_speakable(item.text):  # "Hello. [pause:1s] ." leaves a lone "." that says nothing
            parts.append(_part_request(request, item))
    return parts


def speech_parts(parts: list[Part]) -> list[SpeakRequest]:
    return [p for p in parts if isinstance(p, SpeakRequest)]


def _part_request(request: SpeakRequest, speech: Speech) -> SpeakRequest:
    voice, instruct = request.voice, request.instruct
    if speech.voice_id:
        voice = VoiceSource(voice_id=speech.voice_id)
    if speech.speaker:
        voice = VoiceSource(speaker=speech.speaker)
    if speech.style:
        instruct = speech.style
    return replace(request, text=speech.text, voice=voice, instruct=instruct)
