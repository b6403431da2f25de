"""Split long text into chunks at sentence boundaries, aware of CJK punctuation.

Qwen3-TTS drifts in speaking rate and quality on long inputs, and a CPU takes seconds per
sentence, so text is synthesized chunk by chunk.  Chunks are whole sentences packed up to
``max_chars``; a sentence longer than that is cut at clause punctuation, then at spaces,
and for scripts written without spaces (Chinese, Japanese) at the character limit.
"""

from __future__ import annotations

import re
import unicodedata

# Sentence ends: Latin/Cyrillic/Greek . ! ? … and the full-width CJK forms 。！？; plus
# the Devanagari danda.  Closing quotes and brackets stay with their sentence.
_SENTENCE_END = re.compile(r"""(?<=[.!?…。！？；।])[\"'”’»)\]」』】）]*\s*|\n\s*\n\s*""")
_CLAUSE_END = re.compile(r"(?<=[,;:，、；：—])\s*")


def normalize_text(text: str) -> str:
    """NFC-normalise, drop control characters, collapse runs of spaces (keep paragraph breaks)."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return text.strip()


def split_text(text: str, max_chars: int = 200, pack: bool = True) -> list[str]:
    """Return non-empty chunks, each at most ``max_chars`` characters; with ``pack=False``
    every sentence is its own chunk (streaming: audio starts after the first sentence)."""
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    text = normalize_text(text)
    if not text:
        return []
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]
    pieces: list[str] = []
    for sentence in sentences:
        pieces.extend(_split_long(sentence, max_chars))
    return _pack(pieces, max_chars) if pack else pieces


def _split_long(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    out: list[str] = []
    for clause in (c.strip() for c in _CLAUSE_END.split(sentence)):
        if not clause:
            continue
        if len(clause) <= max_chars:
            out.append(clause)
            continue
        out.extend(_split_words(clause, max_chars))
    return out


def _split_words(clause: str, max_chars: int) -> list[str]:
    words = clause.split(" ")
    out: list[str] = []
    current = ""
    for word in words:
        while len(word) > max_chars:  # no spaces (CJK, or a very long token): hard cut
            if current:
                out.append(current)
                current = ""
            out.append(word[:max_chars])
            word = word[max_chars:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= max_chars:
            current = candidate
        else:
            out.append(current)
            current = word
    if current:
        out.append(current)
    return out


def _pack(pieces: list[str], max_chars: int) -> list[str]:
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        joiner = "" if _is_cjk(current[-1:]) or _is_cjk(piece[:1]) else " "
        candidate = f"{current}{joiner}{piece}" if current else piece
        if len(candidate) <= max_chars:
            current = candidate
        else:
            chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def _is_cjk(ch: str) -> bool:
    if not ch:
        return False
    code = ord(ch)
    return (
        0x3000 <= code <= 0x30FF  # CJK punctuation, Hiragana, Katakana
        or 0x3400 <= code <= 0x9FFF  # CJK ideographs
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
    )


def estimate_seconds(text: str) -> float:
    """A generous upper estimate of speech duration, for the runaway guard.

    Measured speaking rates are ~15 Latin characters/s and ~4-5 CJK characters/s (Hangul
    syllables ~6/s); this uses slower rates so that normal speech never hits the cap."""
    cjk = sum(1 for ch in text if _is_cjk(ch))
    hangul = sum(1 for ch in text if 0xAC00 <= ord(ch) <= 0xD7AF)
    other = len(text) - cjk - hangul
    return other / 8.0 + cjk / 2.5 + hangul / 3.0
