"""What the engine speaks with, one type per model kind: a cloned ``VoicePrompt`` (Base;
stored as safetensors, no pickle), a ``SpeakerVoice`` (a CustomVoice preset speaker, with an
optional style instruction) or a ``DesignedVoice`` (a VoiceDesign description)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class VoicePrompt:
    """A cloned voice as the model consumes it.

    ``family`` names the models it is valid for (``ResolvedModel.family``): the speaker
    embedding's size differs between 1.7B and 0.6B.  ``ref_code`` (frames x 16 codes) and
    ``ref_text`` are set in ICL mode and absent in x-vector-only mode."""

    family: str
    x_vector_only: bool
    speaker_embedding: Any  # torch.Tensor (D,)
    ref_code: Any | None = None  # torch.LongTensor (T, 16)
    ref_text: str | None = None

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        tensors = {"speaker_embedding": self.speaker_embedding.detach().float().contiguous().cpu()}
        if self.ref_code is not None:
            tensors["ref_code"] = self.ref_code.detach().long().contiguous().cpu()
        metadata = {"family": self.family, "x_vector_only": str(self.x_vector_only).lower(),
                    "ref_text": self.ref_text or ""}
        save_file(tensors, str(path), metadata=metadata)

    @classmethod
    def load(cls, path: Path) -> "VoicePrompt":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            keys = set(handle.keys())
            embedding = handle.get_tensor("speaker_embedding")
            ref_code = handle.get_tensor("ref_code") if "ref_code" in keys else None
        return cls(
            family=metadata.get("family", ""),
            x_vector_only=metadata.get("x_vector_only") == "true",
            speaker_embedding=embedding,
            ref_code=ref_code,
            ref_text=metadata.get("ref_text") or None,
        )


@dataclass(frozen=True)
class SpeakerVoice:
    """A CustomVoice model's preset speaker (lowercase name), with an optional instruction."""

    speaker: str
    instruct: str | None = None


@dataclass(frozen=True)
class DesignedVoice:
    """A voice described in words, for a VoiceDesign model."""

    instruct: str


Voice = VoicePrompt | SpeakerVoice | DesignedVoice
