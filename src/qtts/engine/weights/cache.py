"""Quantized weights kept on disk after the first load, so later loads skip quantizing.

A CLI user waits for the load before every sentence, and most of a low-bit load is reading
each bf16 weight of the talker and code predictor and quantizing it.  After that first
load, the low-bit linears' tensors are written (atomically) to one safetensors file in
qtts's home, keyed by the checkpoint's fingerprint, the precision, the kernel's weight
layout and qtts's version.  A later load builds the same linears from that file: the bf16
weights of the checkpoint, memory-mapped by the loader, are never read.

The fingerprint is each weight file's size and modification time plus a SHA-256 of its
first and last MiB: hashing a 4.5 GB checkpoint on every load would cost seconds.
``qtts models list`` shows the cache files and ``qtts models prune`` removes them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from qtts.files import atomic_path

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SUFFIX = ".qtts-weights.safetensors"
_PROBE = 1 << 20


def fingerprint(model_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).rglob("*.safetensors")):
        stat = path.stat()
        digest.update(f"{path.relative_to(model_dir)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        with path.open("rb") as handle:
            digest.update(handle.read(_PROBE))
            handle.seek(max(0, stat.st_size - _PROBE))
            digest.update(handle.read(_PROBE))
    return digest.hexdigest()


def cache_dir(home: Path) -> Path:
    return Path(home) / "weights"


def cache_file(home: Path, model_dir: Path, precision: str, layout: str) -> Path:
    """Where the quantized weights of this checkpoint, precision and layout live."""
    from importlib import metadata

    version = metadata.version("qtts")
    key = hashlib.sha256(f"{fingerprint(model_dir)}|{precision}|{layout}|{version}|{FORMAT_VERSION}"
                         .encode()).hexdigest()[:20]
    name = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in Path(model_dir).name)[:40]
    return cache_dir(home) / f"{name}-{precision}-{layout}-{key}{SUFFIX}"


def save(path: Path, tensors: dict[str, Any], metadata: dict[str, str]) -> None:
    """Write ``tensors`` atomically."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def load(path: Path) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The cached tensors and their metadata, or None when there is no usable file."""
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as exc:  # a truncated or foreign file: quantize again and replace it
        log.warning("ignoring the unreadable weight cache %s (%s)", path, exc)
        return None
    return tensors, metadata


def entries(home: Path) -> list[dict[str, Any]]:
    """The cache files, for ``qtts models list``."""
    directory = cache_dir(home)
    if not directory.is_dir():
        return []
    out = []
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        out.append({"path": str(path), "size_bytes": path.stat().st_size, "metadata": _metadata(path)})
    return out


def prune(home: Path) -> list[str]:
    """Delete every cache file (they are rebuilt on the next load); return their paths."""
    removed = []
    for entry in entries(home):
        Path(entry["path"]).unlink(missing_ok=True)
        removed.append(entry["path"])
    for stray in cache_dir(home).glob(f".*{SUFFIX}.*.part") if cache_dir(home).is_dir() else []:
        stray.unlink(missing_ok=True)
    return removed


def _metadata(path: Path) -> dict[str, str]:
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception:
        return {"error": "unreadable"}


def describe(metadata: dict[str, str]) -> str:
    return json.dumps({k: metadata[k] for k in ("model", "precision", "layout") if k in metadata})
