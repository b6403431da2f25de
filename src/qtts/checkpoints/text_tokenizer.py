"""A small byte-level BPE text tokenizer shaped like Qwen2's, for self-built checkpoints.

The real Qwen vocabulary (151k merges) cannot be fetched offline.  qwen_tts only needs a
``Qwen2TokenizerFast`` that (a) splits text with the Qwen2 pre-tokenizer, (b) knows the 33
Qwen added special tokens, and (c) encodes ``assistant`` and ``\\n`` as single tokens,
because it slices ``input_ids[:, :3]`` (``<|im_start|>assistant\\n``) and ``[:, 3:-5]``.
"""

from __future__ import annotations

from pathlib import Path

# The Qwen2 pre-tokenizer pattern (as shipped in Qwen2/Qwen3 tokenizer.json).
QWEN2_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# The added tokens of Qwen3-TTS's text tokenizer, in their published order (ids 151643…151675
# in the real vocabulary).  The flag says whether the token is "special" (skipped on decode).
ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True),
    ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False),
    ("</tool_call>", False), ("<|fim_prefix|>", False), ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False), ("<|fim_pad|>", False), ("<|repo_name|>", False),
    ("<|file_sep|>", False), ("<tool_response>", False), ("</tool_response>", False),
    ("<think>", False), ("</think>", False), ("<|audio_start|>", True), ("<|audio_end|>", True),
    ("<tts_pad>", True), ("<tts_text_bos>", True), ("<tts_text_eod>", True),
    ("<tts_text_bos_single>", True), ("<|audio_pad|>", True),
)

_CORPUS = (
    "assistant user system assistant\n",
    "The quick brown fox jumps over the lazy dog. Hello, world! How are you today?",
    "Speech synthesis turns text into audio; a cloned voice speaks any sentence you type.",
    "Numbers like 1, 2, 3 and 2026 appear in text, as do dates, times and prices: $4.99.",
    "Der schnelle braune Fuchs springt über den faulen Hund. Bonjour, ça va très bien.",
    "El rápido zorro marrón salta sobre el perro perezoso. Il gatto dorme sul divano.",
    "Быстрая коричневая лиса прыгает через ленивую собаку. O rato roeu a roupa do rei.",
    "你好，世界。今天天气很好，我们去公园散步吧！语音合成把文字变成声音。",
    "こんにちは、世界。今日はいい天気ですね。音声合成はテキストを音声に変えます。",
    "안녕하세요, 세계. 오늘 날씨가 좋네요. 음성 합성은 텍스트를 소리로 바꿉니다.",
)


def train_text_tokenizer(out_dir: Path, vocab_size: int = 640) -> dict[str, int]:
    """Train the tokenizer, write ``vocab.json``, ``merges.txt`` and ``tokenizer_config.json``
    into ``out_dir`` as the published snapshots lay them out, and return the ids of the
    tokens that ``config.json`` refers to."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(_CORPUS) * 20, trainer=trainer)

    fast = Qwen2TokenizerFast(
        tokenizer_object=tokenizer,
        unk_token=None,
        bos_token=None,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
    )
    ordered = [AddedToken(t, special=s, normalized=False) for t, s in ADDED_TOKENS]
    fast.add_tokens(ordered)
    fast.add_special_tokens({"additional_special_tokens": [t for t, s in ADDED_TOKENS if s]})

    for piece in ("assistant", "\n"):
        if len(fast.encode(piece, add_special_tokens=False)) != 1:
            raise RuntimeError(f"tokenizer training did not make {piece!r} a single token")

    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out_dir), legacy_format=True)
    # The published layout has no tokenizer.json; vocab.json + merges.txt carry the model.
    (out_dir / "tokenizer.json").unlink(missing_ok=True)
    (out_dir / "special_tokens_map.json").unlink(missing_ok=True)
    (out_dir / "added_tokens.json").unlink(missing_ok=True)

    ids = {t: fast.convert_tokens_to_ids(t) for t, _ in ADDED_TOKENS}
    return {
        "im_start_token_id": ids["<|im_start|>"],
        "im_end_token_id": ids["<|im_end|>"],
        "tts_pad_token_id": ids["<tts_pad>"],
        "tts_bos_token_id": ids["<tts_text_bos>"],
        "tts_eos_token_id": ids["<tts_text_eod>"],
        "assistant_token_id": fast.convert_tokens_to_ids("assistant"),
        "vocab_size": len(fast),
    }
