"""Numbers read in the text's language (opt-in: ``--read-numbers``, API ``read_numbers``).

The model reads most numbers itself, and qtts speaks the text verbatim by default.  Users of
Qwen3-TTS report digits misread or read in Chinese in other languages' text; for them this
rewrites times, currency, percentages, ordinals, years, decimals and whole numbers as words
with ``num2words`` (Chinese with ``cn2an``), before the chunk goes to the model.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Qwen3-TTS's languages, as num2words names them (Chinese goes through cn2an)
CODES = {"english": "en", "german": "de", "french": "fr", "russian": "ru", "portuguese": "pt", "spanish": "es",
         "italian": "it", "japanese": "ja", "korean": "ko", "chinese": "zh"}
_PERCENT = {"en": "percent", "de": "Prozent", "fr": "pour cent", "ru": "процентов", "pt": "por cento",
            "es": "por ciento", "it": "per cento", "ja": "パーセント", "ko": "퍼센트"}
_CURRENCY = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
_DECIMAL_COMMA = {"de", "fr", "ru", "pt", "es", "it"}  # 1.234,5 there; 1,234.5 in en, ja, ko

_TIME = re.compile(r"(?<![\d:])(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?![\d:])")
_MONEY = re.compile(r"(?P<sym>[$€£¥])\s?(?P<num>\d[\d,.]*\d|\d)")
_MONEY_AFTER = re.compile(r"(?P<num>\d[\d,.]*\d|\d)\s?(?P<sym>[$€£¥])")
_PERCENT_RE = re.compile(r"(?P<num>\d[\d,.]*\d|\d)\s?%")
_ORDINAL = {"en": re.compile(r"\b(?P<num>\d+)(?:st|nd|rd|th)\b"),
            "fr": re.compile(r"\b(?P<num>\d+)(?:er|re|e|ème)\b"),
            "es": re.compile(r"\b(?P<num>\d+)[ºª°]"), "it": re.compile(r"\b(?P<num>\d+)[ºª°]"),
            "pt": re.compile(r"\b(?P<num>\d+)[ºª°]")}
_LETTERS = "A-Za-z\u00c0-\u024f\u0400-\u04ff"
# a number not inside a word (MP3, 4K stay); in Chinese, Japanese and Korean text letters touch numbers
_NUMBER = {"latin": re.compile(rf"(?<![{_LETTERS}\d.,])(?:(?<!\w)-)?\d(?:[\d,.]*\d)?(?![{_LETTERS}\d])"),
           "cjk": re.compile(r"(?<![\d.,])(?:(?<!\w)-)?\d(?:[\d,.]*\d)?(?!\d)")}
_SPACED_THOUSANDS = re.compile(r"(?<=\d)[ \u00a0\u202f](?=\d{3}(?!\d))")  # French and Russian 1 234


def language_code(language: str, text: str = "") -> str | None:
    """num2words's code for a Qwen3-TTS language name (Chinese dialects as Chinese; "Auto"
    from the script of ``text``, Latin script as English), or None where there is none."""
    name = language.strip().lower()
    if name == "auto":
        from qtts.text import guess_language

        return guess_language(text)
    if "dialect" in name:
        return "zh"
    return CODES.get(name)


def supported(language: str) -> bool:
    return language_code(language) is not None


def spoken_numbers(text: str, language: str) -> str | None:
    """``text`` with its numbers as words in ``language`` (a Qwen3-TTS language name); None
    where the language is not supported (the caller says so once and keeps the text)."""
    code = language_code(language, text)
    if code is None:
        return None
    if code == "zh":
        import cn2an

        return cn2an.transform(text, "an2cn")
    from num2words import num2words

    def words(value: float | int, to: str = "cardinal", **extra: str) -> str:
        try:
            return num2words(value, lang=code, to=to, **extra)
        except (NotImplementedError, OverflowError, ValueError):
            return num2words(value, lang=code)

    def replace(pattern: re.Pattern[str], render: Callable[[re.Match[str]], str | None]) -> None:
        nonlocal text

        def one(match: re.Match[str]) -> str:
            result = render(match)
            return match.group(0) if result is None else result

        text = pattern.sub(one, text)

    if code in ("fr", "ru"):
        text = _SPACED_THOUSANDS.sub("", text)
    replace(_TIME, lambda m: _time(words, code, int(m.group("h")), int(m.group("m"))))
    for money in (_MONEY, _MONEY_AFTER):
        replace(money, lambda m: _money(words, code, m.group("sym"), _parse(m.group("num"), code)))
    replace(_PERCENT_RE, lambda m: _unit(words, _parse(m.group("num"), code), _PERCENT.get(code, "%")))
    if code in _ORDINAL:
        replace(_ORDINAL[code], lambda m: words(int(m.group("num")), "ordinal"))
    replace(_NUMBER["cjk" if code in ("ja", "ko") else "latin"], lambda m: _number(words, code, m.group(0)))
    return text


def _parse(raw: str, code: str) -> float | int | None:
    """A number as the language writes it: ``1,234.5`` in English, ``1.234,5`` in German."""
    thousands, decimal = (".", ",") if code in _DECIMAL_COMMA else (",", ".")
    body = raw.lstrip("-")
    if body.count(decimal) > 1:
        return None
    whole, _, fraction = body.partition(decimal)
    groups = whole.split(thousands)
    if len(groups) > 1 and (not 1 <= len(groups[0]) <= 3 or any(len(g) != 3 for g in groups[1:])):
        return None  # not a grouped number (e.g. a version 1.2.3): left as it is
    digits = "".join(groups)
    if not digits.isdigit() or (fraction and not fraction.isdigit()):
        return None
    sign = -1 if raw.startswith("-") else 1
    return sign * (float(f"{digits}.{fraction}") if fraction else int(digits))


def _number(words: Callable[..., str], code: str, raw: str) -> str | None:
    value = _parse(raw, code)
    if value is None:
        return None
    if (isinstance(value, int) and raw.isdigit() and 1100 <= value <= 2099
            and code in ("en", "de", "fr", "es", "it", "pt", "ru")):
        return words(value, "year")  # a bare four-digit number in this range is read as a year
    return words(value)


def _time(words: Callable[..., str], code: str, hour: int, minute: int) -> str:
    if code == "en":
        if minute == 0:
            return f"{words(hour)} o'clock"
        return f"{words(hour)} {'oh ' if minute < 10 else ''}{words(minute)}"
    if code == "de":
        return f"{words(hour)} Uhr" + (f" {words(minute)}" if minute else "")
    if code == "fr":
        return f"{words(hour)} heures" + (f" {words(minute)}" if minute else "")
    return f"{words(hour)} {words(minute)}" if minute else words(hour)


def _money(words: Callable[..., str], code: str, symbol: str, value: float | int | None) -> str | None:
    if value is None:
        return None
    try:
        from num2words import num2words

        return num2words(value, lang=code, to="currency", currency=_CURRENCY[symbol])
    except (NotImplementedError, KeyError, ValueError):
        return f"{words(value)} {symbol}"


def _unit(words: Callable[..., str], value: float | int | None, unit: str) -> str | None:
    return None if value is None else f"{words(value)} {unit}"
