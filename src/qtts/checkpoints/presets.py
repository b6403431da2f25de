"""Configuration values of the published Qwen3-TTS-12Hz checkpoints (Base, CustomVoice,
VoiceDesign), and the presets derived from them for self-built random-weight checkpoints.

The values are facts about the published models (hidden sizes, layer counts, codec ids,
speaker ids); they equal the published ``config.json`` files of each kind and size (kept in
the project's shared ``reference/`` folder; ``tests/unit/test_presets.py`` compares them
when that folder is present) and reproduce the published parameter counts (1.7B: 1928.7M).  The text-token ids
(``im_start_token_id`` …) are rewritten by the builder to the ids of the tokenizer it trains,
because the real Qwen vocabulary is not available offline; the embedding sizes stay those of the real models.
"""

from __future__ import annotations

import copy
from typing import Any

# fmt: off
MODEL_1_7B_CONFIG: dict[str, Any] = {'im_start_token_id': 151644,
 'im_end_token_id': 151645,
 'tts_pad_token_id': 151671,
 'tts_bos_token_id': 151672,
 'tts_eos_token_id': 151673,
 'assistant_token_id': 77091,
 'model_type': 'qwen3_tts',
 'tokenizer_type': 'qwen3_tts_tokenizer_12hz',
 'tts_model_size': '1b7',
 'tts_model_type': 'base',
 'speaker_encoder_config': {'enc_dim': 2048, 'sample_rate': 24000},
 'talker_config': {'attention_bias': False,
                   'attention_dropout': 0,
                   'code_predictor_config': {'hidden_size': 1024,
                                             'intermediate_size': 3072,
                                             'num_hidden_layers': 5,
                                             'num_attention_heads': 16,
                                             'num_key_value_heads': 8,
                                             'head_dim': 128,
                                             'attention_bias': False,
                                             'attention_dropout': 0,
                                             'hidden_act': 'silu',
                                             'initializer_range': 0.02,
                                             'layer_types': ['full_attention',
                                                             'full_attention',
                                                             'full_attention',
                                                             'full_attention',
                                                             'full_attention'],
                                             'max_position_embeddings': 65536,
                                             'max_window_layers': 28,
                                             'model_type': 'qwen3_tts_talker_code_predictor',
                                             'num_code_groups': 16,
                                             'rms_norm_eps': 1e-06,
                                             'rope_scaling': None,
                                             'rope_theta': 1000000,
                                             'sliding_window': None,
                                             'use_cache': True,
                                             'use_sliding_window': False,
                                             'vocab_size': 2048},
                   'codec_bos_id': 2149,
                   'codec_eos_token_id': 2150,
                   'codec_think_id': 2154,
                   'codec_language_id': {'chinese': 2055,
                                         'english': 2050,
                                         'german': 2053,
                                         'italian': 2070,
                                         'portuguese': 2071,
                                         'spanish': 2054,
                                         'japanese': 2058,
                                         'korean': 2064,
                                         'french': 2061,
                                         'russian': 2069},
                   'codec_nothink_id': 2155,
                   'codec_pad_id': 2148,
                   'codec_think_bos_id': 2156,
                   'codec_think_eos_id': 2157,
                   'spk_id': {},
                   'spk_is_dialect': {},
                   'head_dim': 128,
                   'hidden_act': 'silu',
                   'hidden_size': 2048,
                   'initializer_range': 0.02,
                   'intermediate_size': 6144,
                   'max_position_embeddings': 32768,
                   'model_type': 'qwen3_tts_talker',
                   'num_attention_heads': 16,
                   'num_code_groups': 16,
                   'num_hidden_layers': 28,
                   'num_key_value_heads': 8,
                   'position_id_per_seconds': 13,
                   'rms_norm_eps': 1e-06,
                   'rope_scaling': {'interleaved': True,
                                    'mrope_section': [24, 20, 20],
                                    'rope_type': 'default',
                                    'type': 'default'},
                   'rope_theta': 1000000,
                   'sliding_window': None,
                   'text_hidden_size': 2048,
                   'text_vocab_size': 151936,
                   'use_cache': True,
                   'use_sliding_window': False,
                   'vocab_size': 3072}}

SPEECH_TOKENIZER_CONFIG: dict[str, Any] = {'encoder_valid_num_quantizers': 16,
 'input_sample_rate': 24000,
 'output_sample_rate': 24000,
 'decode_upsample_rate': 1920,
 'encode_downsample_rate': 1920,
 'encoder_config': {'audio_channels': 1,
                    'num_filters': 64,
                    'kernel_size': 7,
                    'residual_kernel_size': 3,
                    'last_kernel_size': 3,
                    'num_residual_layers': 1,
                    'compress': 2,
                    'upsampling_ratios': [8, 6, 5, 4],
                    'hidden_size': 512,
                    'num_hidden_layers': 8,
                    'num_attention_heads': 8,
                    'num_key_value_heads': 8,
                    'head_dim': 64,
                    'intermediate_size': 2048,
                    'hidden_act': 'gelu',
                    'norm_eps': 1e-05,
                    'layer_scale_initial_scale': 0.01,
                    'rope_theta': 10000,
                    'max_position_embeddings': 8000,
                    'sliding_window': 250,
                    'num_quantizers': 32,
                    'num_semantic_quantizers': 1,
                    'codebook_size': 2048,
                    'codebook_dim': 256,
                    'vector_quantization_hidden_dimension': 256,
                    'pad_mode': 'constant',
                    'use_causal_conv': True,
                    'upsample_groups': 512,
                    'frame_rate': 12.5,
                    'sampling_rate': 24000},
 'decoder_config': {'attention_bias': False,
                    'attention_dropout': 0.0,
                    'latent_dim': 1024,
                    'codebook_dim': 512,
                    'codebook_size': 2048,
                    'decoder_dim': 1536,
                    'hidden_act': 'silu',
                    'hidden_size': 512,
                    'intermediate_size': 1024,
                    'layer_scale_initial_scale': 0.01,
                    'max_position_embeddings': 8000,
                    'head_dim': 64,
                    'num_attention_heads': 16,
                    'num_hidden_layers': 8,
                    'num_key_value_heads': 16,
                    'num_quantizers': 16,
                    'num_semantic_quantizers': 1,
                    'rms_norm_eps': 1e-05,
                    'rope_theta': 10000,
                    'semantic_codebook_size': 4096,
                    'sliding_window': 72,
                    'upsample_rates': [8, 5, 4, 3],
                    'upsampling_ratios': [2, 2],
                    'vector_quantization_hidden_dimension': 512}}

GENERATION_CONFIG: dict[str, Any] = {'do_sample': True,
 'repetition_penalty': 1.05,
 'temperature': 0.9,
 'top_p': 1.0,
 'top_k': 50,
 'subtalker_dosample': True,
 'subtalker_temperature': 0.9,
 'subtalker_top_p': 1.0,
 'subtalker_top_k': 50,
 'max_new_tokens': 8192}

# The preset speakers of the published CustomVoice models (1.7B and 0.6B alike): their codec
# token ids, and the dialect each one speaks when the language is Chinese or Auto.  The
# other kinds' published configs differ from Base only in ``tts_model_type`` and in having
# no ``speaker_encoder_config`` (they have no speaker encoder).
CUSTOM_VOICE_SPEAKERS: dict[str, int] = {'serena': 3066, 'vivian': 3065, 'uncle_fu': 3010, 'ryan': 3061,
                                         'aiden': 2861, 'ono_anna': 2873, 'sohee': 2864, 'eric': 2875,
                                         'dylan': 2878}
CUSTOM_VOICE_DIALECTS: dict[str, Any] = {'serena': False, 'vivian': False, 'uncle_fu': False, 'ryan': False,
                                         'aiden': False, 'ono_anna': False, 'sohee': False,
                                         'eric': 'sichuan_dialect', 'dylan': 'beijing_dialect'}
CUSTOM_VOICE_DIALECT_LANGUAGES: dict[str, int] = {'beijing_dialect': 2074, 'sichuan_dialect': 2062}
# fmt: on

SIZES = ("tiny", "0.6b", "1.7b")
# preset suffix -> tts_model_type; the published models: Base at both sizes, CustomVoice at
# both sizes, VoiceDesign at 1.7B only (tiny builds every kind, for tests).
KINDS = {"": "base", "-custom": "custom_voice", "-design": "voice_design"}
PRESETS = ("tiny", "0.6b", "1.7b", "tiny-custom", "tiny-design", "0.6b-custom", "1.7b-custom", "1.7b-design")


def model_config(preset: str) -> dict[str, Any]:
    """The top-level ``config.json`` values for a preset (before token ids are set)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    size, kind = _split(preset)
    config = copy.deepcopy(MODEL_1_7B_CONFIG)
    config["tts_model_type"] = kind
    if kind == "custom_voice":
        talker = config["talker_config"]
        talker["spk_id"] = dict(CUSTOM_VOICE_SPEAKERS)
        talker["spk_is_dialect"] = dict(CUSTOM_VOICE_DIALECTS)
        talker["codec_language_id"].update(CUSTOM_VOICE_DIALECT_LANGUAGES)
    if size == "0.6b":
        config["tts_model_size"] = "0b6"
        config["speaker_encoder_config"]["enc_dim"] = 1024
        config["talker_config"].update(hidden_size=1024, intermediate_size=3072)
    if size == "tiny":
        config = _tiny_model_config(config)
    if kind != "base":
        del config["speaker_encoder_config"]
    return config


def _split(preset: str) -> tuple[str, str]:
    """'1.7b-custom' -> ('1.7b', 'custom_voice')."""
    for suffix, kind in KINDS.items():
        if suffix and preset.endswith(suffix):
            return preset[: -len(suffix)], kind
    return preset, "base"


def size_of(preset: str) -> str:
    return _split(preset)[0]


def speech_tokenizer_config(preset: str) -> dict[str, Any]:
    """The ``speech_tokenizer/config.json`` values for a preset."""
    config = copy.deepcopy(SPEECH_TOKENIZER_CONFIG)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if size_of(preset) != "tiny":
        return config
    config["encoder_config"].update(
        num_filters=2, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, head_dim=4, intermediate_size=8, codebook_size=TINY_CODEBOOK,
        codebook_dim=4, vector_quantization_hidden_dimension=4, num_quantizers=16,
        upsample_groups=8,
    )
    config["decoder_config"].update(
        latent_dim=8, codebook_dim=4, codebook_size=TINY_CODEBOOK, decoder_dim=16, hidden_size=8,
        intermediate_size=8, head_dim=4, num_attention_heads=2, num_key_value_heads=2,
        num_hidden_layers=1, vector_quantization_hidden_dimension=4, semantic_codebook_size=TINY_CODEBOOK,
    )
    return config


# The tiny preset keeps every structural rule of the real one (16 code groups, 12.5 frames/s,
# 24 kHz, codec special ids in the top 1024 ids of the talker vocabulary) and shrinks widths.
TINY_CODEBOOK = 32
# Wide enough for the talker's and code predictor's linears to be quantized and to take
# qtts's int8 kernel (inputs a multiple of 64), as the real ones are.
TINY_HIDDEN = 64
_TINY_CODEC_BASE = TINY_CODEBOOK  # real: codebook 2048, special ids from 2048 up


def _tiny_model_config(config: dict[str, Any]) -> dict[str, Any]:
    talker = config["talker_config"]
    shift = _TINY_CODEC_BASE - 2048
    for key in ("codec_bos_id", "codec_eos_token_id", "codec_think_id", "codec_nothink_id",
                "codec_pad_id", "codec_think_bos_id", "codec_think_eos_id"):
        talker[key] += shift
    talker["codec_language_id"] = {k: v + shift for k, v in talker["codec_language_id"].items()}
    talker["spk_id"] = {k: v + shift for k, v in talker["spk_id"].items()}
    talker.update(
        vocab_size=TINY_CODEBOOK + 1024, hidden_size=TINY_HIDDEN, intermediate_size=TINY_HIDDEN, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, text_hidden_size=8,
        rope_scaling={"interleaved": True, "mrope_section": [8, 4, 4], "rope_type": "default",
                      "type": "default"},
    )
    talker["code_predictor_config"].update(
        hidden_size=TINY_HIDDEN, intermediate_size=TINY_HIDDEN, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=32, vocab_size=TINY_CODEBOOK, layer_types=["full_attention"],
    )
    config["speaker_encoder_config"] = {
        "enc_dim": TINY_HIDDEN, "sample_rate": 24000, "enc_channels": [8, 8, 8], "enc_kernel_sizes": [5, 3, 1],
        "enc_dilations": [1, 2, 1], "enc_attention_channels": 4, "enc_res2net_scale": 2,
        "enc_se_channels": 4,
    }
    return config
