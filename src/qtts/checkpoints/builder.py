"""Write random-weight Qwen3-TTS-12Hz checkpoints (Base, CustomVoice, VoiceDesign) in the published snapshot layout.

The model and speech-tokenizer objects are the real ``qwen_tts`` classes built from the
published configuration values (``presets``), so a self-built checkpoint exercises exactly
the loading and synthesis code that real weights do.  Uses: the ``tiny`` preset for tests
(well under 1 MB), ``0.6b`` / ``1.7b`` for benchmarks and memory checks.  Random weights
rarely emit EOS: cap ``max_new_tokens`` when synthesizing with them.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qtts.checkpoints import presets
from qtts.checkpoints.text_tokenizer import train_text_tokenizer

log = logging.getLogger(__name__)

MODEL_FILES = (
    "config.json", "generation_config.json", "model.safetensors", "vocab.json", "merges.txt",
    "tokenizer_config.json", "preprocessor_config.json",
    "speech_tokenizer/config.json", "speech_tokenizer/model.safetensors",
    "speech_tokenizer/preprocessor_config.json",
)

_PROCESSOR_CONFIG = {"processor_class": "Qwen3TTSProcessor"}
_FEATURE_EXTRACTOR_CONFIG = {
    "chunk_length_s": None, "feature_extractor_type": "EncodecFeatureExtractor",
    "feature_size": 1, "overlap": None, "padding_side": "right", "padding_value": 0.0,
    "return_attention_mask": True, "sampling_rate": 24000,
}


@dataclass(frozen=True)
class BuiltCheckpoint:
    path: Path
    preset: str
    parameters: int
    size_bytes: int


def build_random_checkpoint(preset: str, out_dir: Path, seed: int = 0, overwrite: bool = False,
                            say: Callable[[str], None] | None = None) -> BuiltCheckpoint:
    """Build a ``preset`` checkpoint into ``out_dir`` (written beside it, then renamed);
    ``say`` gets a line per step (a full-size build takes a minute or more)."""
    step = say or (lambda _message: None)
    import torch
    from safetensors.torch import save_file

    from qtts.engine.upstream import import_qwen_tts

    if preset not in presets.PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(presets.PRESETS)}")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty")
    qwen_tts = import_qwen_tts()
    from qwen_tts.core.models import Qwen3TTSConfig, Qwen3TTSForConditionalGeneration
    from qwen_tts.core.tokenizer_12hz.configuration_qwen3_tts_tokenizer_v2 import (
        Qwen3TTSTokenizerV2Config,
    )
    from qwen_tts.core.tokenizer_12hz.modeling_qwen3_tts_tokenizer_v2 import (
        Qwen3TTSTokenizerV2Model,
    )
    del qwen_tts

    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)

    step(f"1/4 text tokenizer ({preset})")
    token_ids = train_text_tokenizer(staging)
    config_values = presets.model_config(preset)
    text_vocab = token_ids.pop("vocab_size")
    config_values.update(token_ids)
    if presets.size_of(preset) == "tiny":
        config_values["talker_config"]["text_vocab_size"] = -(-text_vocab // 64) * 64

    step("2/4 model with random weights")
    torch.manual_seed(seed)
    # Published weights are bf16: build in bf16 so that a 1.7B build needs ~4 GB, not 8.
    dtype = torch.float32 if presets.size_of(preset) == "tiny" else torch.bfloat16
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        model = Qwen3TTSForConditionalGeneration(Qwen3TTSConfig(**config_values))
    finally:
        torch.set_default_dtype(previous)
    state = {k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
    parameters = sum(v.numel() for v in state.values())
    step(f"3/4 writing {parameters / 1e6:.1f}M parameters")
    save_file(state, str(staging / "model.safetensors"), metadata={"format": "pt"})
    del model, state

    # Upstream bug: model.save_pretrained() writes a config.json that does not load back
    # (Qwen3TTSSpeakerEncoderConfig rejects 'model_type'), so write the values ourselves.
    _write_json(staging / "config.json", config_values)
    _write_json(staging / "generation_config.json", presets.GENERATION_CONFIG)
    _write_json(staging / "preprocessor_config.json", _PROCESSOR_CONFIG)

    step("4/4 speech tokenizer")
    tokenizer_values = presets.speech_tokenizer_config(preset)
    torch.manual_seed(seed + 1)
    codec = Qwen3TTSTokenizerV2Model(Qwen3TTSTokenizerV2Config(**tokenizer_values))
    codec_state = {k: v.float().contiguous() for k, v in codec.state_dict().items()}
    _spread_codebooks(codec_state, seed)
    parameters += sum(v.numel() for v in codec_state.values())
    codec_dir = staging / "speech_tokenizer"
    codec_dir.mkdir()
    save_file(codec_state, str(codec_dir / "model.safetensors"), metadata={"format": "pt"})
    _write_json(codec_dir / "config.json", {"model_type": "qwen3_tts_tokenizer_12hz", **tokenizer_values})
    _write_json(codec_dir / "preprocessor_config.json", _FEATURE_EXTRACTOR_CONFIG)
    del codec, codec_state

    _write_json(staging / "qtts_random_checkpoint.json", {"preset": preset, "seed": seed})
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    size = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    log.info("built %s checkpoint at %s (%d parameters, %d bytes)", preset, out_dir, parameters, size)
    return BuiltCheckpoint(path=out_dir, preset=preset, parameters=parameters, size_bytes=size)


def _spread_codebooks(state: dict, seed: int) -> None:
    """Make random codec weights produce audible, code-dependent audio.

    Codebooks start with all-zero sums (every code decodes to the same vector), and the
    default 0.02-std init shrinks the signal through ~40 layers to ~1e-11.  Give codebooks
    random entries and every matrix a fan-in-scaled std so the waveform keeps its level."""
    import torch

    generator = torch.Generator().manual_seed(seed + 2)
    for name, tensor in state.items():
        if name.endswith(("embedding_sum", "embed_sum")) and not tensor.any():
            state[name] = torch.randn(tensor.shape, generator=generator)
        elif name.endswith("weight") and tensor.dim() >= 2 and "decoder" in name:
            fan_in = tensor[0].numel() if tensor.dim() > 2 else tensor.shape[1]
            state[name] = torch.randn(tensor.shape, generator=generator) / max(fan_in, 1) ** 0.5


def _write_json(path: Path, values: dict) -> None:
    path.write_text(json.dumps(values, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
