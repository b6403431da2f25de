"""Model resolution: alias -> repo id -> local directory (Hugging Face cache, offline first).

``resolve_model`` is the one function every command uses to find weights; it never
downloads.  ``pull_model`` downloads on request (``qtts models pull``).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from qtts.errors import BadInput, ModelUnavailable
from qtts.settings import FALLBACK_MODEL_ID

ALIASES = {
    "1.7b": "Qwen/Qwen3-TTS-12Hz-1.7B-Base",
    "0.6b": "Qwen/Qwen3-TTS-12Hz-0.6B-Base",
    "1.7b-custom": "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice",
    "0.6b-custom": "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice",
    "1.7b-design": "Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign",
}
# The three kinds of 12 Hz model (``tts_model_type`` in config.json), as users call them.
BASE, CUSTOM_VOICE, VOICE_DESIGN = "base", "custom_voice", "voice_design"
KIND_NAMES = {BASE: "Base", CUSTOM_VOICE: "CustomVoice", VOICE_DESIGN: "VoiceDesign"}
# The preset speakers' native languages, from the speaker table of Qwen's Qwen3-TTS README
# (the config only says which speak a dialect).  A speaker missing here shows "unknown".
SPEAKER_LANGUAGES = {
    "vivian": "Chinese", "serena": "Chinese", "uncle_fu": "Chinese", "dylan": "Chinese (Beijing dialect)",
    "eric": "Chinese (Sichuan dialect)", "ryan": "English", "aiden": "English", "ono_anna": "Japanese",
    "sohee": "Korean",
}
_ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "speech_tokenizer/*"]
_DTYPE_BYTES = {"F32": 4, "BF16": 2, "F16": 2, "I64": 8, "I32": 4, "I8": 1, "U8": 1, "BOOL": 1}


@dataclass(frozen=True)
class ResolvedModel:
    model_id: str  # what the user asked for, alias expanded
    path: Path
    tts_model_type: str
    tts_model_size: str
    speaker_dim: int
    languages: tuple[str, ...] = ("auto",)
    speakers: tuple[str, ...] = ()  # CustomVoice preset speakers, lowercase

    @property
    def family(self) -> str:
        """Voice prompts are valid across models with the same size tag and speaker encoder."""
        return f"{self.tts_model_size}-spk{self.speaker_dim}"

    @property
    def kind(self) -> str:
        """"Base", "CustomVoice" or "VoiceDesign"."""
        return KIND_NAMES.get(self.tts_model_type, self.tts_model_type)

    @property
    def takes_instructions(self) -> bool:
        """VoiceDesign always; CustomVoice at 1.7B only (upstream drops them at 0.6B)."""
        return self.tts_model_type == VOICE_DESIGN or (self.tts_model_type == CUSTOM_VOICE
                                                       and self.tts_model_size != "0b6")


def expand_alias(model_id: str) -> str:
    return ALIASES.get(model_id.strip().lower(), model_id.strip())


def resolve_model(model_id: str) -> ResolvedModel:
    """Find ``model_id`` locally (a directory, or the HF cache) and check it is usable."""
    repo_or_path = expand_alias(model_id)
    candidate = Path(repo_or_path).expanduser()
    if candidate.is_dir():
        path = candidate.resolve()
    elif candidate.exists() or repo_or_path.startswith((".", "/", "~")) or repo_or_path.count("/") != 1:
        raise ModelUnavailable(
            f"model {model_id!r} is neither a model directory nor a Hugging Face repo id",
            hint=f"use an alias ({', '.join(ALIASES)}), a repo id like {ALIASES['1.7b']}, or a local directory",
        )
    else:
        path = _cached_snapshot(repo_or_path)
    return _inspect(model_id=repo_or_path, path=path)


def _cached_snapshot(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, allow_patterns=_ALLOW_PATTERNS, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError) as exc:
        raise ModelUnavailable(
            f"model {repo_id} is not downloaded",
            hint=f"run 'qtts models pull {repo_id}' (needs internet), or use the smaller "
            f"--model-id {FALLBACK_MODEL_ID}, or pass a local model directory",
        ) from exc


def _inspect(model_id: str, path: Path) -> ResolvedModel:
    config_path = path / "config.json"
    missing = [name for name in ("config.json", "model.safetensors", "speech_tokenizer/config.json",
                                 "speech_tokenizer/model.safetensors") if not (path / name).is_file()]
    if missing:
        raise ModelUnavailable(
            f"{path} is not a complete Qwen3-TTS model directory (missing {', '.join(missing)})",
            hint=f"re-download with 'qtts models pull {model_id}' or point --model-id at a complete snapshot",
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"cannot read {config_path}: {exc}", hint="re-download the model") from exc
    if config.get("model_type") != "qwen3_tts":
        raise ModelUnavailable(
            f"{model_id} is not a Qwen3-TTS model (model_type={config.get('model_type')!r})",
            hint=f"use a Qwen3-TTS Base model such as {ALIASES['1.7b']}",
        )
    if config.get("tokenizer_type") != "qwen3_tts_tokenizer_12hz":
        raise ModelUnavailable(
            f"{model_id} uses tokenizer {config.get('tokenizer_type')!r}; qtts supports the 12 Hz models",
            hint=f"use {ALIASES['1.7b']} or {ALIASES['0.6b']}",
        )
    model_type = str(config.get("tts_model_type", ""))
    if model_type not in KIND_NAMES:
        raise ModelUnavailable(
            f"{model_id} is a Qwen3-TTS model of an unknown kind (tts_model_type={model_type!r})",
            hint=f"qtts runs the kinds {', '.join(KIND_NAMES.values())}; see 'qtts models' for the aliases",
        )
    speaker = config.get("speaker_encoder_config") or {}
    talker = config.get("talker_config") or {}
    # As upstream Qwen3TTSForConditionalGeneration: "auto" plus the non-dialect codec languages.
    codec_languages = talker.get("codec_language_id") or {}
    languages = ("auto", *sorted(lang for lang in codec_languages if "dialect" not in lang))
    return ResolvedModel(
        model_id=model_id,
        path=path,
        tts_model_type=model_type,
        tts_model_size=str(config.get("tts_model_size", "unknown")),
        speaker_dim=int(speaker.get("enc_dim", 1024)),
        languages=languages,
        speakers=tuple(sorted(str(name).lower() for name in (talker.get("spk_id") or {}))),
    )


def check_language(language: str | None, supported: tuple[str, ...] | list[str]) -> str:
    """Validate a language name case-insensitively; return it as qwen_tts expects it."""
    names = {lang.lower() for lang in supported}
    key = (language or "auto").strip().lower()
    if key not in names:
        raise BadInput(f"unsupported language {language!r}",
                       hint=f"choose one of: {', '.join(sorted(n.capitalize() for n in names))}")
    return "Auto" if key == "auto" else key.capitalize()


def weight_bytes(path: Path, as_bytes_per_param: int | None = None) -> int:
    """Bytes of all safetensors under a model directory, optionally as if every floating
    tensor had ``as_bytes_per_param`` bytes per element (to estimate an fp32 load of bf16)."""
    total = 0
    for file in sorted(path.rglob("*.safetensors")):
        try:
            with file.open("rb") as handle:
                (header_len,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(header_len))
        except (OSError, ValueError, struct.error) as exc:
            raise ModelUnavailable(f"{file} is not a readable safetensors file ({type(exc).__name__})",
                                   hint="the download may be incomplete: run 'qtts models pull' again") from exc
        for name, info in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for dim in info["shape"]:
                count *= dim
            per = _DTYPE_BYTES.get(info["dtype"], 4)
            if as_bytes_per_param and info["dtype"] in ("F32", "BF16", "F16"):
                per = as_bytes_per_param
            total += count * per
    return total


def pull_model(model_id: str) -> Path:
    """Download a model snapshot into the Hugging Face cache, with a progress bar."""
    from huggingface_hub import snapshot_download

    repo_id = expand_alias(model_id)
    try:
        return Path(snapshot_download(repo_id, allow_patterns=_ALLOW_PATTERNS))
    except Exception as exc:  # network, auth, unknown repo: all end the same way for the user
        raise ModelUnavailable(
            f"could not download {repo_id}: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
            hint="check the repo id and your connection (HF_ENDPOINT / HF_TOKEN); "
            "or copy a snapshot to a directory and pass it as --model-id",
        ) from exc


@dataclass(frozen=True)
class CachedModel:
    repo_id: str
    size_bytes: int
    path: Path

    @property
    def kind(self) -> str:
        try:
            return resolve_model(self.repo_id).kind
        except ModelUnavailable:
            return "incomplete"


def list_cached_models() -> list[CachedModel]:
    """Qwen3-TTS repos in the Hugging Face cache."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir()
    except CacheNotFound:
        return []
    result = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type == "model" and "qwen3-tts" in repo.repo_id.lower():
            result.append(CachedModel(repo_id=repo.repo_id, size_bytes=repo.size_on_disk, path=repo.repo_path))
    return result
