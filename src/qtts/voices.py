"""The voice library on disk: one directory per voice under ``<home>/voices``.

    <voice-id>/meta.json                  mode, reference text, duration, created, families,
                                          and for a designed voice its description
    <voice-id>/reference.wav              the normalized 24 kHz mono reference (with its pad)
    <voice-id>/prompt.<family>.safetensors the derived prompt tensors, one per model family

A designed voice (``qtts clone create --design``, ``design.py``) is stored with its clip and
no prompt: the first Base model that speaks with it derives one.

A voice used with a model of another family (1.7B vs 0.6B: different speaker-embedding
sizes) is re-derived from ``reference.wav`` and the new prompt is stored beside the first.
Voices are written into a temporary directory and renamed into place: never half a voice.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from qtts import audio as audio_mod
from qtts.engine.prompts import VoicePrompt
from qtts.errors import BadInput, NotFound
from qtts.files import atomic_path, current_umask, write_atomic

if TYPE_CHECKING:
    from qtts.engine.core import Engine

VOICE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def validate_voice_id(voice_id: str) -> str:
    if not isinstance(voice_id, str) or not VOICE_ID_PATTERN.fullmatch(voice_id):
        raise BadInput(f"invalid voice id {voice_id!r}",
                       hint="use 1-64 characters: lowercase letters, digits, '-' and '_', "
                            "starting with a letter or digit")
    return voice_id


@dataclass(frozen=True)
class VoiceInfo:
    voice_id: str
    mode: str  # "icl" or "x_vector"
    ref_text: str
    duration_s: float
    created: str
    created_with: str  # model id used to derive the first prompt (or to design the voice)
    families: tuple[str, ...]
    description: str = ""  # a designed voice: the words it was designed from

    def to_dict(self) -> dict:
        return {**asdict(self), "families": list(self.families)}


class VoiceLibrary:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _dir(self, voice_id: str) -> Path:
        return self.root / validate_voice_id(voice_id)

    def exists(self, voice_id: str) -> bool:
        return (self._dir(voice_id) / "meta.json").is_file()

    def create(self, voice_id: str, reference: audio_mod.Audio, ref_text: str | None, x_vector_only: bool,
               engine: "Engine", overwrite: bool = False) -> VoiceInfo:
        """Derive and store a voice from a prepared reference (``audio.prepare_reference``)."""
        self.check_free(voice_id, overwrite)
        prompt = engine.create_prompt(reference, ref_text, x_vector_only)
        return self._store(voice_id, reference, ref_text, x_vector_only, engine.model.model_id, prompt)

    def add_designed(self, voice_id: str, reference: audio_mod.Audio, ref_text: str, description: str,
                     designed_with: str, overwrite: bool = False) -> VoiceInfo:
        """Store a designed voice's clip and transcript; prompts are derived on first use."""
        self.check_free(voice_id, overwrite)
        return self._store(voice_id, reference, ref_text, False, designed_with, None, description)

    def check_free(self, voice_id: str, overwrite: bool) -> None:
        if self.exists(voice_id) and not overwrite:
            raise BadInput(f"voice {voice_id!r} already exists",
                           hint=f"choose another id, or delete it first with 'qtts clone delete {voice_id}'")

    def _store(self, voice_id: str, reference: audio_mod.Audio, ref_text: str | None, x_vector_only: bool,
               created_with: str, prompt: VoicePrompt | None, description: str = "") -> VoiceInfo:
        info = VoiceInfo(
            voice_id=voice_id,
            mode="x_vector" if x_vector_only else "icl",
            ref_text=(ref_text or "").strip(),
            duration_s=round(reference.duration_s, 3),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            created_with=created_with,
            families=(prompt.family,) if prompt is not None else (),
            description=description,
        )
        return self._commit(voice_id, reference, info, [prompt] if prompt is not None else [])

    def add_with_prompts(self, voice_id: str, reference: audio_mod.Audio, info: VoiceInfo,
                         prompts: list[VoicePrompt], overwrite: bool = False) -> VoiceInfo:
        """Store a voice whose prompts were derived elsewhere (an imported voice file)."""
        self.check_free(voice_id, overwrite)
        return self._commit(voice_id, reference, info, prompts)

    def _commit(self, voice_id: str, reference: audio_mod.Audio, info: VoiceInfo,
                prompts: list[VoicePrompt]) -> VoiceInfo:
        """Write the voice into a staging directory, then rename it into place in one step."""
        target = self._dir(voice_id)
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{voice_id}.", dir=self.root))
        try:
            (staging / "reference.wav").write_bytes(audio_mod.encode(reference, "wav"))
            for prompt in prompts:
                prompt.save(staging / f"prompt.{prompt.family}.safetensors")
            _write_meta(staging, info)
            os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes 0700
            if target.exists():
                _swap_directories(staging, target)  # staging now holds the old voice
            else:
                staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return info

    def get(self, voice_id: str) -> VoiceInfo:
        meta = self._dir(voice_id) / "meta.json"
        if not meta.is_file():
            raise NotFound(f"voice {voice_id!r} does not exist",
                           hint="list voices with 'qtts clone list', or create one with 'qtts clone create'")
        values = json.loads(meta.read_text(encoding="utf-8"))
        values["families"] = tuple(values.get("families", ()))
        return VoiceInfo(**values)

    def list(self) -> list[VoiceInfo]:
        if not self.root.is_dir():
            return []
        voices = []
        for child in sorted(self.root.iterdir()):
            if child.is_dir() and VOICE_ID_PATTERN.fullmatch(child.name) and (child / "meta.json").is_file():
                voices.append(self.get(child.name))
        return voices

    def delete(self, voice_id: str) -> None:
        self.get(voice_id)
        shutil.rmtree(self._dir(voice_id))

    def reference_path(self, voice_id: str) -> Path:
        self.get(voice_id)
        return self._dir(voice_id) / "reference.wav"

    def prompt_for(self, voice_id: str, engine: "Engine") -> VoicePrompt:
        """The voice's prompt for ``engine``'s model family, derived and stored if missing."""
        info = self.get(voice_id)
        directory = self._dir(voice_id)
        path = directory / f"prompt.{engine.family}.safetensors"
        if path.is_file():
            return VoicePrompt.load(path)
        reference = audio_mod.decode_audio(directory / "reference.wav", what="stored reference")
        prompt = engine.create_prompt(reference, info.ref_text or None, info.mode == "x_vector")
        with atomic_path(path) as tmp:
            prompt.save(tmp)
        families = tuple(dict.fromkeys((*info.families, engine.family)))
        _write_meta(directory, VoiceInfo(**{**asdict(info), "families": families}))
        return prompt


def _swap_directories(new: Path, old: Path) -> None:
    """Put ``new`` in the place of ``old`` in one step, leaving the old contents at ``new``.

    Linux's ``renameat2(RENAME_EXCHANGE)`` swaps the two names atomically, so a reader sees
    the old voice or the new one, never none.  Elsewhere: rename aside, then into place."""
    import ctypes

    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = getattr(libc, "renameat2", None)
        if renameat2 is not None:
            at_fdcwd, rename_exchange = -100, 2
            if renameat2(at_fdcwd, os.fsencode(new), at_fdcwd, os.fsencode(old), rename_exchange) == 0:
                return
    aside = new.with_name(new.name + ".old")
    old.rename(aside)
    new.rename(old)
    aside.rename(new)


def _write_meta(directory: Path, info: VoiceInfo) -> None:
    data = json.dumps(info.to_dict(), indent=2, ensure_ascii=False) + "\n"
    write_atomic(directory / "meta.json", data.encode("utf-8"))
