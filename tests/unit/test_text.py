import pytest

from qtts.text import estimate_seconds, normalize_text, split_text


def test_short_text_is_one_chunk():
    assert split_text("Hello world.") == ["Hello world."]


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


def test_korean_splits_at_sentence_ends_and_spaces():
    text = "안녕하세요. 오늘 날씨가 정말 좋네요. 같이 산책하러 갈까요?"
    chunks = split_text(text, max_chars=20)
    assert chunks == ["안녕하세요.", "오늘 날씨가 정말 좋네요.", "같이 산책하러 갈까요?"]


def test_cjk_chunks_are_joined_without_spaces():
    assert split_text("你好。世界。", max_chars=50) == ["你好。世界。"]


def test_clause_punctuation_is_preferred_over_spaces():
    text = "This is a rather long clause, and this is another long clause that follows it."
    assert split_text(text, max_chars=40)[0] == "This is a rather long clause,"


def test_empty_and_whitespace_give_no_chunks():
    assert split_text("   \n\t ") == []


def test_normalize_drops_control_characters_and_collapses_spaces():
    assert normalize_text("a\x00b   c\u00a0 d ") == "ab c d"


def test_estimate_is_slower_for_cjk_than_latin():
    assert estimate_seconds("你好世界你好世界") > estimate_seconds("helloworld")


def test_bad_limit_is_rejected():
    with pytest.raises(ValueError):
        split_text("x", max_chars=0)
