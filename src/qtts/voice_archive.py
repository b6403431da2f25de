"""One file per voice, to carry it to another machine or ``QTTS_HOME``: ``qtts clone export``
and ``import``, and ``/v1/audio/voices/{id}/export`` and ``/v1/audio/voices/import``.

The file is a zip archive (``.qtts-voice`` by convention) of:

    qvoice.json                     {"format": "qtts-voice", "version": 1, ...}
    meta.json                       the voice's metadata (mode, transcript, description, ...)
    reference.wav                   the normalized 24 kHz mono reference
    prompt.<family>.safetensors     the derived prompts, one per model family (optional)

The prompts travel with the voice, so it speaks identically after import (same model, greedy).
Import treats the file as hostile: only those member names (no paths), each below its size cap
(read with a limit, whatever the archive declares), the format and version checked, the clip
decoded and checked (finite samples, length), every prompt loaded and checked (shapes, finite
values, its family, its mode), and the voice stored in one step: nothing is half-imported.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtts import audio as audio_mod
from qtts.errors import BadInput, TooLarge
from qtts.voices import VoiceInfo, VoiceLibrary, validate_voice_id

if TYPE_CHECKING:
    from qtts.engine.prompts import VoicePrompt

FORMAT = "qtts-voice"
VERSION = 1
SUFFIX = ".qtts-voice"
MAX_ARCHIVE_BYTES = 128 * 1024 * 1024
_CAPS = {"qvoice.json": 4096, "meta.json": 65536, "reference.wav": 64 * 1024 * 1024}
_PROMPT = re.compile(r"prompt\.(?P<family>[A-Za-z0-9_.-]{1,64})\.safetensors")
_PROMPT_CAP = 32 * 1024 * 1024
_MAX_PROMPTS = 8
_HINT = "export it again with 'qtts clone export' (qtts writes this format)"


def export_voice(library: VoiceLibrary, voice_id: str) -> bytes:
    """The voice as one archive's bytes."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        qtts_version = version("qtts")
    except PackageNotFoundError:  # run from a source tree
        qtts_version = "unknown"
    info = library.get(voice_id)
    directory = library.reference_path(voice_id).parent
    header = {"format": FORMAT, "version": VERSION, "voice_id": info.voice_id, "qtts": qtts_version,
              "exported": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("qvoice.json", json.dumps(header, indent=2) + "\n")
        archive.write(directory / "meta.json", "meta.json")
        archive.write(directory / "reference.wav", "reference.wav")
        for prompt in sorted(directory.glob("prompt.*.safetensors")):
            archive.write(prompt, prompt.name)
    return buffer.getvalue()


def import_voice(library: VoiceLibrary, data: bytes, voice_id: str | None = None, overwrite: bool = False,
                 max_reference_s: float = 600.0) -> VoiceInfo:
    """Check an archive's every member and store the voice (as ``voice_id``, or the id it was
    exported with); bad input, and nothing stored, for anything else."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise TooLarge(f"the voice file is over {MAX_ARCHIVE_BYTES // (1024 * 1024)} MiB", hint=_HINT)
    members = _read_members(data)
    header = _json(members, "qvoice.json")
    if header.get("format") != FORMAT:
        raise BadInput("this is not a qtts voice file (its qvoice.json names another format)", hint=_HINT)
    if header.get("version") != VERSION:
        raise BadInput(f"this voice file is version {header.get('version')!r}; this qtts reads version {VERSION}",
                       hint="update qtts on this machine, or export the voice with the same version")
    meta = _json(members, "meta.json")
    voice_id = validate_voice_id(voice_id or str(meta.get("voice_id", "")))
    library.check_free(voice_id, overwrite)
    if "reference.wav" not in members:
        raise BadInput("the voice file has no reference.wav", hint=_HINT)
    reference = audio_mod.decode_audio(members["reference.wav"], what="the voice file's reference",
                                       max_seconds=max_reference_s + 1.0)
    info = _info(meta, voice_id, reference)
    prompts = [_prompt(members[name], match.group("family"), info)
               for name in sorted(members) if (match := _PROMPT.fullmatch(name))]
    info = VoiceInfo(**{**info.to_dict(), "families": tuple(p.family for p in prompts)})
    return library.add_with_prompts(voice_id, reference, info, prompts, overwrite)


def _read_members(data: bytes) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BadInput(f"the voice file is not a readable archive (corrupt or truncated: {exc})", hint=_HINT) from exc
    members: dict[str, bytes] = {}
    prompts = 0
    for entry in entries:
        name = entry.filename
        cap = _CAPS.get(name) or (_PROMPT_CAP if _PROMPT.fullmatch(name) else None)
        if cap is None or entry.is_dir() or name in members:
            raise BadInput(f"the voice file has an unexpected member {name!r}",
                           hint="a voice file holds qvoice.json, meta.json, reference.wav and prompt files only")
        prompts += name.startswith("prompt.")
        if prompts > _MAX_PROMPTS:
            raise BadInput("the voice file has too many prompt files", hint=_HINT)
        if entry.file_size > cap:
            raise TooLarge(f"the voice file's {name} is {entry.file_size} bytes; the limit is {cap}", hint=_HINT)
        try:
            with archive.open(entry) as handle:
                content = handle.read(cap + 1)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
            raise BadInput(f"the voice file's {name} cannot be read (corrupt or truncated: {exc})", hint=_HINT) from exc
        if len(content) > cap:  # the archive understated it
            raise TooLarge(f"the voice file's {name} is over its limit of {cap} bytes", hint=_HINT)
        members[name] = content
    return members


def _json(members: dict[str, bytes], name: str) -> dict[str, Any]:
    if name not in members:
        raise BadInput(f"the voice file has no {name}", hint=_HINT)
    try:
        value = json.loads(members[name].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"the voice file's {name} is not valid JSON ({exc})", hint=_HINT) from exc
    if not isinstance(value, dict):
        raise BadInput(f"the voice file's {name} is not a JSON object", hint=_HINT)
    return value


def _info(meta: dict[str, Any], voice_id: str, reference: audio_mod.Audio) -> VoiceInfo:
    mode = meta.get("mode")
    ref_text = meta.get("ref_text", "")
    description = meta.get("description", "")
    if mode not in ("icl", "x_vector") or not isinstance(ref_text, str) or not isinstance(description, str):
        raise BadInput("the voice file's meta.json is not a voice's (mode, ref_text, description)", hint=_HINT)
    if mode == "icl" and not ref_text.strip():
        raise BadInput("the voice file's voice is in ICL mode without its transcript", hint=_HINT)
    return VoiceInfo(voice_id=voice_id, mode=mode, ref_text=ref_text[:10_000],
                     duration_s=round(reference.duration_s, 3),
                     created=str(meta.get("created", ""))[:64], created_with=str(meta.get("created_with", ""))[:512],
                     families=(), description=description[:10_000])


def _prompt(data: bytes, family: str, info: VoiceInfo) -> VoicePrompt:
    import torch

    from qtts.engine.prompts import VoicePrompt

    with tempfile.TemporaryDirectory(prefix="qtts-import-") as tmp:
        path = Path(tmp) / "prompt.safetensors"
        path.write_bytes(data)
        try:
            prompt = VoicePrompt.load(path)
        except Exception as exc:  # safetensors raises its own errors for a malformed header or body
            raise BadInput(f"the voice file's prompt for {family} cannot be read ({type(exc).__name__})",
                           hint=_HINT) from exc
    embedding, codes = prompt.speaker_embedding, prompt.ref_code
    good = (prompt.family == family and prompt.x_vector_only == (info.mode == "x_vector")
            and embedding.dim() == 1 and 0 < embedding.numel() <= 16384 and embedding.is_floating_point()
            and bool(torch.isfinite(embedding).all()))
    if codes is not None:
        good = good and codes.dim() == 2 and codes.shape[1] == 16 and codes.dtype == torch.long and (
            codes.numel() == 0 or (int(codes.min()) >= 0 and int(codes.max()) < 65536))
    good = good and (codes is None) == (info.mode == "x_vector")
    if not good:
        raise BadInput(f"the voice file's prompt for {family} does not match its voice (shape, values or mode)",
                       hint=_HINT)
    return prompt
