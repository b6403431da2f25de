"""The answer to an engine call, as a stream of frames: the HTTP status is sent before the
work is done, so progress, audio, and then the summary or the error follow in the body.

A frame is one kind byte, a 4-byte big-endian length, and the payload.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

PROGRESS = b"p"  # a line for stderr (utf-8)
FRAMES = b"f"  # the frame counter of the chunk being generated: JSON [chunk, chunks, frames, cap]
AUDIO = b"a"  # audio bytes, in order
RESULT = b"r"  # the summary (JSON): the call succeeded
ERROR = b"e"  # the error (JSON: category, message, hint): the call failed
KINDS = (PROGRESS, FRAMES, AUDIO, RESULT, ERROR)
_HEADER = 5


def pack(kind: bytes, payload: bytes) -> bytes:
    return kind + len(payload).to_bytes(4, "big") + payload


def pack_json(kind: bytes, value: Any) -> bytes:
    return pack(kind, json.dumps(value, default=str).encode())


class Reader:
    """Frames out of a byte stream that arrives in pieces of any size."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[bytes, bytes]]:
        self._buffer += data
        while len(self._buffer) >= _HEADER:
            kind = bytes(self._buffer[:1])
            if kind not in KINDS:
                raise ValueError(f"unknown frame kind {kind!r}")
            size = int.from_bytes(self._buffer[1:_HEADER], "big")
            if len(self._buffer) < _HEADER + size:
                return
            payload = bytes(self._buffer[_HEADER : _HEADER + size])
            del self._buffer[: _HEADER + size]
            yield kind, payload

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame (a stream cut mid-frame leaves some)."""
        return len(self._buffer)
