"""Split long text into chunks at sentence boundaries, without changing a character.

Qwen3-TTS drifts in speaking rate and quality on long inputs, and a CPU takes seconds per
sentence, so text is synthesized chunk by chunk.  Sentences come from ``sentencex`` (a
maintained segmenter for ~300 languages that keeps decimals, abbreviations, URLs, e-mail
addresses and ellipses inside their sentence); qtts only packs them into chunks of at most
``max_chars``.  A sentence longer than that is cut at clause punctuation, then at spaces,
and for scripts written without spaces at the character limit.  Every chunk is a verbatim
slice of the (normalized) input: the pieces are tracked as spans, never re-joined.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

_CLAUSE_END = re.compile(r"(?<=[,;:，、；：—])\s*")
# Qwen3-TTS's language names -> sentencex's language codes.
_LANGUAGE_CODES = {"chinese": "zh", "english": "en", "japanese": "ja", "korean": "ko", "german": "de",
                   "french": "fr", "russian": "ru", "portuguese": "pt", "spanish": "es", "italian": "it"}
# Format characters that only steer display and would reach the model as noise: the byte
# order mark and the bidirectional embeddings, overrides and isolates.  ZWJ/ZWNJ (Persian,
# Indic scripts, emoji sequences) and the other format characters are kept.
_DROPPED_FORMAT = {0xFEFF, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}

Span = tuple[int, int]


def normalize_text(text: str) -> str:
    """NFC-normalise, drop control characters, collapse runs of spaces (keep paragraph breaks)."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if ch in "\n\t" or not _dropped(ch))
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return text.strip()


def _dropped(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category in ("Cc", "Cs", "Cn") or (category == "Cf" and ord(ch) in _DROPPED_FORMAT)


def is_speakable(text: str) -> bool:
    """Whether the text holds anything to say: a letter or a digit (not only punctuation,
    symbols or emoji)."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


def split_text(text: str, max_chars: int, pack: bool = True, language: str = "Auto") -> list[str]:
    """Return non-empty chunks, each at most ``max_chars`` characters and each a verbatim
    slice of ``normalize_text(text)``; with ``pack=False`` every sentence is its own chunk
    (streaming: audio starts after the first sentence).  Chunks with nothing to say (only
    punctuation or symbols) are left out."""
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    text = normalize_text(text)
    if not text:
        return []
    pieces = [piece for sentence in _sentences(text, language) for piece in _split_long(text, sentence, max_chars)]
    spans = _pack(text, pieces, max_chars) if pack else pieces
    chunks = [text[start:end] for start, end in spans]
    return [chunk for chunk in chunks if is_speakable(chunk)]


def _sentences(text: str, language: str) -> Iterator[Span]:
    import sentencex

    code = _LANGUAGE_CODES.get(language.lower()) or guess_language(text)
    position = 0
    for sentence in sentencex.segment(code, text):
        start = text.find(sentence, position)
        if start < 0:  # never seen; keep the rest whole rather than lose text
            break
        position = start + len(sentence)
        yield from _trimmed(text, start, position)
    if position < len(text):
        yield from _trimmed(text, position, len(text))


def _trimmed(text: str, start: int, end: int) -> Iterator[Span]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        yield start, end


def guess_language(text: str) -> str:
    """A sentencex code from the script most of the letters are in (for language "Auto")."""
    counts = {"ko": 0, "ja": 0, "zh": 0, "ru": 0, "en": 0}
    for ch in text:
        code = ord(ch)
        if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF:
            counts["ko"] += 1
        elif 0x3040 <= code <= 0x30FF:
            counts["ja"] += 2  # kana mark Japanese even among many kanji
        elif _is_cjk(ch):
            counts["zh"] += 1
        elif 0x0400 <= code <= 0x04FF:
            counts["ru"] += 1
        elif ch.isalpha():
            counts["en"] += 1
    return max(counts, key=lambda lang: counts[lang]) if any(counts.values()) else "en"


def _split_long(text: str, span: Span, max_chars: int) -> list[Span]:
    start, end = span
    if end - start <= max_chars:
        return [span]
    out: list[Span] = []
    clause_start = start
    for match in _CLAUSE_END.finditer(text, start, end):
        if match.start() > clause_start:
            out.extend(_split_words(text, (clause_start, match.start()), max_chars))
        clause_start = match.end()
    if clause_start < end:
        out.extend(_split_words(text, (clause_start, end), max_chars))
    return out


def _split_words(text: str, span: Span, max_chars: int) -> list[Span]:
    start, end = span
    if end - start <= max_chars:
        return [span]
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text[start:end])]
    out: list[Span] = []
    current: Span | None = None
    for word_start, word_end in ((start + a, start + b) for a, b in words):
        while word_end - word_start > max_chars:  # no spaces (CJK, or a very long token): hard cut
            if current:
                out.append(current)
                current = None
            out.append((word_start, word_start + max_chars))
            word_start += max_chars
        if current and word_end - current[0] <= max_chars:
            current = (current[0], word_end)
        else:
            if current:
                out.append(current)
            current = (word_start, word_end)
    if current:
        out.append(current)
    return out


def _pack(text: str, pieces: list[Span], max_chars: int) -> list[Span]:
    """Merge consecutive pieces into chunks of at most ``max_chars`` (the original text
    between them included); a paragraph break always ends a chunk (a natural pause)."""
    chunks: list[Span] = []
    current: Span | None = None
    for piece in pieces:
        if current and piece[1] - current[0] <= max_chars and "\n\n" not in text[current[1]:piece[0]]:
            current = (current[0], piece[1])
        else:
            if current:
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
