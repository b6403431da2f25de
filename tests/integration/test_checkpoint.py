"""The self-built tiny checkpoint: published layout, real qwen_tts classes, small."""

import json

from qtts.checkpoints.builder import MODEL_FILES
from qtts.hub import resolve_model


def test_tiny_checkpoint_has_the_published_layout(tiny_model):
    for name in MODEL_FILES:
        assert (tiny_model / name).is_file(), name
    assert not (tiny_model / "tokenizer.json").exists()


def test_tiny_checkpoint_is_well_under_a_megabyte(tiny_model):
    size = sum(p.stat().st_size for p in tiny_model.rglob("*") if p.is_file())
    # ~0.7 MB: the talker is 64 wide so that its linears take the int8 kernel, and its codec
    # vocabulary keeps the real 1024 special ids on top of the codebook.
    assert size < 800_000


def test_codec_special_ids_sit_in_the_top_1024_talker_ids(tiny_model):
    talker = json.loads((tiny_model / "config.json").read_text())["talker_config"]
    top = range(talker["vocab_size"] - 1024, talker["vocab_size"])
    for key in ("codec_bos_id", "codec_eos_token_id", "codec_pad_id", "codec_think_id", "codec_nothink_id"):
        assert talker[key] in top
    assert all(v in top for v in talker["codec_language_id"].values())


def test_text_tokenizer_keeps_the_slices_qwen_tts_relies_on(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    config = json.loads((tiny_model / "config.json").read_text())
    ids = tokenizer("<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>assistant\n")["input_ids"]
    assert ids[0] == config["im_start_token_id"]
    assert ids[1] == config["assistant_token_id"]
    assert tokenizer.decode(ids[3:-5]) == "Hello"
    assert len(tokenizer.get_added_vocab()) == 33


def test_resolution_reads_the_model_facts(tiny_model):
    resolved = resolve_model(str(tiny_model))
    assert resolved.tts_model_type == "base"
    assert "english" in resolved.languages and "auto" in resolved.languages
