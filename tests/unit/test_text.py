import pytest

from qtts.text import estimate_seconds, is_speakable, normalize_text, split_text

# (language, text, the exact sentence chunks).  75 sentences in the 10 languages of
# Qwen3-TTS, plus Auto: decimals, thousands separators, times, dates, URLs, e-mail
# addresses, abbreviations, ellipses, "?!" and CJK sentence ends stay inside their sentence.
# Two known merges (a sentence after "exemple.fr." and after "etc.") keep every character.
SENTENCES = [
    ("English", "Pi is 3.14 and e is 2.718. Visit example.com at 9 a.m. tomorrow!",
     ["Pi is 3.14 and e is 2.718.", "Visit example.com at 9 a.m. tomorrow!"]),
    ("English", "Dr. Smith, e.g. the U.S. expert, said so... Really?! Yes.",
     ["Dr. Smith, e.g. the U.S. expert, said so...", "Really?!", "Yes."]),
    ("English", "It costs $1,000.50 today. Mail me at jo.doe@mail.com now.",
     ["It costs $1,000.50 today.", "Mail me at jo.doe@mail.com now."]),
    ("English", "The meeting is on 12.03.2024 at 10:30. See https://qwen.ai/tts?a=1.2 for more.",
     ["The meeting is on 12.03.2024 at 10:30.", "See https://qwen.ai/tts?a=1.2 for more."]),
    ("English", "Mr. and Mrs. Jones live on Elm St. in town. They moved in 1999.",
     ["Mr. and Mrs. Jones live on Elm St. in town.", "They moved in 1999."]),
    ("English", "Wait... what? I said no!", ["Wait... what?", "I said no!"]),
    ("German", "Es ist z.B. 2,5 Grad kalt. Am 3. Oktober ist Feiertag. Das ist gut.",
     ["Es ist z.B. 2,5 Grad kalt.", "Am 3. Oktober ist Feiertag.", "Das ist gut."]),
    ("German", "Dr. Müller kommt um 14.30 Uhr. Er bringt ca. 1.000 Euro mit!",
     ["Dr. Müller kommt um 14.30 Uhr.", "Er bringt ca. 1.000 Euro mit!"]),
    ("German", "Das kostet 3,99 €. Wirklich? Ja, d.h. es ist billig.",
     ["Das kostet 3,99 €.", "Wirklich?", "Ja, d.h. es ist billig."]),
    ("French", "Il est 10 h. C'est-à-dire demain... Quoi ?! Oui.",
     ["Il est 10 h.", "C'est-à-dire demain...", "Quoi ?!", "Oui."]),
    ("French", "Il fait 2,5 degrés. Le site est exemple.fr. Merci !",
     ["Il fait 2,5 degrés.", "Le site est exemple.fr. Merci !"]),
    ("French", "Mme Dupont a payé 1 000,50 euros. Vraiment ?", ["Mme Dupont a payé 1 000,50 euros.", "Vraiment ?"]),
    ("Spanish", "Hoy hace 2.5 grados. ¿De verdad? ¡Sí! El Sr. García vino.",
     ["Hoy hace 2.5 grados.", "¿De verdad?", "¡Sí!", "El Sr. García vino."]),
    ("Spanish", "La Dra. López llega a las 10.30. ¡Qué bien!", ["La Dra. López llega a las 10.30.", "¡Qué bien!"]),
    ("Spanish", "Cuesta 3,50 euros, etc. Vale.", ["Cuesta 3,50 euros, etc. Vale."]),
    ("Italian", "Oggi ci sono 2.5 gradi. Il Sig. Rossi è qui. Sì!",
     ["Oggi ci sono 2.5 gradi.", "Il Sig. Rossi è qui.", "Sì!"]),
    ("Italian", "Il dott. Bianchi arriva alle 9.15. Bene?", ["Il dott. Bianchi arriva alle 9.15.", "Bene?"]),
    ("Portuguese", "Hoje faz 2.5 graus. O Sr. Silva chegou. Sim!", ["Hoje faz 2.5 graus.", "O Sr. Silva chegou.",
                                                                    "Sim!"]),
    ("Portuguese", "A Dra. Costa pagou R$ 1.500,00. Que ótimo!", ["A Dra. Costa pagou R$ 1.500,00.", "Que ótimo!"]),
    ("Russian", "Сегодня 2.5 градуса. Завтра будет дождь! Правда?",
     ["Сегодня 2.5 градуса.", "Завтра будет дождь!", "Правда?"]),
    ("Russian", "Цена 3,14 рубля. Это г. Москва.", ["Цена 3,14 рубля.", "Это г. Москва."]),
    ("Korean", "오늘은 2.5도입니다. 내일은 비가 옵니다! 정말요? 네.",
     ["오늘은 2.5도입니다.", "내일은 비가 옵니다!", "정말요?", "네."]),
    ("Korean", "가격은 1,000원입니다. 감사합니다.", ["가격은 1,000원입니다.", "감사합니다."]),
    ("Chinese", "今天是2.5度。明天会下雨！真的吗？是的。", ["今天是2.5度。", "明天会下雨！", "真的吗？", "是的。"]),
    ("Chinese", "价格是3.14元，网址是qwen.ai。好的……再见。", ["价格是3.14元，网址是qwen.ai。", "好的……再见。"]),
    ("Japanese", "今日は2.5度です。明日は雨です！本当？はい。",
     ["今日は2.5度です。", "明日は雨です！", "本当？", "はい。"]),
    ("Japanese", "価格は1,000円です。ありがとうございます。", ["価格は1,000円です。", "ありがとうございます。"]),
    ("Auto", "오늘은 2.5도입니다. 내일은 비가 옵니다!", ["오늘은 2.5도입니다.", "내일은 비가 옵니다!"]),
    ("Auto", "今天是2.5度。明天会下雨！", ["今天是2.5度。", "明天会下雨！"]),
    ("Auto", "Pi is 3.14. Hello!", ["Pi is 3.14.", "Hello!"]),
]


def test_the_table_has_at_least_60_sentences_in_the_10_languages():
    assert sum(len(expected) for _, _, expected in SENTENCES) >= 60
    assert len({language for language, _, _ in SENTENCES} - {"Auto"}) == 10


@pytest.mark.parametrize("language, text, expected", SENTENCES)
def test_sentences_are_split_exactly_and_verbatim(language, text, expected):
    chunks = split_text(text, 200, pack=False, language=language)
    assert chunks == expected
    assert all(chunk in text for chunk in chunks)


@pytest.mark.parametrize("language, text, expected", SENTENCES)
def test_packed_chunks_are_verbatim_slices_within_the_limit(language, text, expected):
    for limit in (20, 40, 200):
        chunks = split_text(text, limit, language=language)
        assert chunks and all(chunk in text and len(chunk) <= limit for chunk in chunks)
    assert split_text(text, 200, language=language) == [text]  # short texts stay whole


def test_sentences_are_packed_up_to_the_limit():
    text = "One two three. Four five six. Seven eight nine."
    assert split_text(text, max_chars=30) == ["One two three. Four five six.", "Seven eight nine."]


def test_every_chunk_respects_the_limit_and_keeps_all_words():
    text = " ".join(f"word{i}" for i in range(200)) + "."
    chunks = split_text(text, max_chars=50)
    assert all(len(c) <= 50 for c in chunks)
    assert " ".join(chunks).split() == text.split()


def test_chinese_splits_at_full_width_punctuation_without_spaces():
    text = "今天天气很好。我们去公园散步吧！你觉得怎么样？"
    assert split_text(text, max_chars=10) == ["今天天气很好。", "我们去公园散步吧！", "你觉得怎么样？"]


def test_japanese_without_punctuation_is_cut_at_the_limit():
    text = "あ" * 25
    assert split_text(text, max_chars=10) == ["あ" * 10, "あ" * 10, "あ" * 5]


def test_cjk_chunks_are_joined_without_spaces():
    assert split_text("你好。世界。", max_chars=50) == ["你好。世界。"]


def test_clause_punctuation_is_preferred_over_spaces():
    text = "This is a rather long clause, and this is another long clause that follows it."
    assert split_text(text, max_chars=40)[0] == "This is a rather long clause,"


def test_a_paragraph_break_ends_a_chunk():
    assert split_text("First part.\n\nSecond part.", max_chars=200) == ["First part.", "Second part."]


def test_empty_whitespace_and_unspeakable_text_give_no_chunks():
    assert split_text("   \n\t ", 200) == []
    assert split_text("?!... ---", 200) == []
    assert split_text("😀🎉 👍", 200) == []
    assert not is_speakable("?!... ---") and is_speakable("a?") and is_speakable("42")


def test_normalize_drops_control_characters_and_collapses_spaces():
    assert normalize_text("a\x00b   c\u00a0 d ") == "ab c d"
    assert normalize_text("\ufeffab\u202ec") == "abc"  # BOM and bidi override


def test_zwj_and_zwnj_are_kept():
    persian = "می\u200cخواهم"  # ZWNJ inside a Persian word
    family = "👨\u200d👩\u200d👧 is a family."
    assert normalize_text(persian) == persian
    assert split_text(family, 200) == [family]


def test_estimate_is_slower_for_cjk_than_latin():
    assert estimate_seconds("你好世界你好世界") > estimate_seconds("helloworld")


def test_bad_limit_is_rejected():
    with pytest.raises(ValueError):
        split_text("x", max_chars=0)
