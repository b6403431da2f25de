"""Configuration values of the published Qwen3-TTS-12Hz Base checkpoints, and the presets
derived from them for self-built random-weight checkpoints.

The values are facts about the published models (hidden sizes, layer counts, codec ids);
they were reconstructed from public sources and reproduce the published parameter counts
(1.7B: 1928.7M parameters).  The text-token ids (``im_start_token_id`` …) are rewritten by
the builder to the ids of the tokenizer it trains, because the real Qwen vocabulary is not
available offline; the embedding sizes stay those of the real models.
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
# fmt: on

PRESETS = ("tiny", "0.6b", "1.7b")


def model_config(preset: str) -> dict[str, Any]:
    """The top-level ``config.json`` values for a preset (before token ids are set)."""
    config = copy.deepcopy(MODEL_1_7B_CONFIG)
    if preset == "1.7b":
        return config
    if preset == "0.6b":
        config["tts_model_size"] = "0b6"
        config["speaker_encoder_config"]["enc_dim"] = 1024
        config["talker_config"].update(hidden_size=1024, intermediate_size=3072)
        return config
    if preset == "tiny":
        return _tiny_model_config(config)
    raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")


def speech_tokenizer_config(preset: str) -> dict[str, Any]:
    """The ``speech_tokenizer/config.json`` values for a preset."""
    config = copy.deepcopy(SPEECH_TOKENIZER_CONFIG)
    if preset in ("1.7b", "0.6b"):
        return config
    if preset != "tiny":
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
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
