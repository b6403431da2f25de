"""Batch synthesis: many items from a file into a directory, resumable via a manifest.

Input: ``.txt`` (one text per line), ``.jsonl`` (one object per line) or ``.csv`` (a header
row); fields ``id``, ``text``, ``voice``, ``language``, ``format``.  ``manifest.jsonl`` in
the output directory gets one line per finished item (ok or error); a rerun skips the items
whose audio is already there.  A bad line is reported with its line number and skipped.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qtts import audio as audio_mod
from qtts.errors import BadInput, QttsError
from qtts.files import write_atomic
from qtts.subtitles import write_subtitles

ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class BatchItem:
    line: int
    id: str
    text: str
    voice: str | None
    language: str | None
    format: str | None


@dataclass(frozen=True)
class BadLine:
    line: int
    message: str


def read_items(path: Path) -> Iterator[BatchItem | BadLine]:
    """Parse the input file, yielding items and the lines that could not be used."""
    if not path.is_file():
        raise BadInput(f"input file {path} does not exist", hint="check the path")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path} is not UTF-8 text", hint="convert it to UTF-8") from exc
    if suffix == ".jsonl":
        rows = _jsonl_rows(text)
    elif suffix == ".csv":
        rows = _csv_rows(text)
    elif suffix == ".txt":
        rows = ((n, {"text": line}) for n, line in enumerate(text.splitlines(), start=1) if line.strip())
    else:
        raise BadInput(f"cannot read {path.name}: unknown input type", hint="use a .txt, .jsonl or .csv file")
    seen: set[str] = set()
    for line, row in rows:
        if isinstance(row, str):
            yield BadLine(line, row)
            continue
        item = _item(line, row)
        if isinstance(item, BatchItem):
            if item.id in seen:
                item = BadLine(line, f"duplicate id {item.id!r}")
            else:
                seen.add(item.id)
        yield item


def _jsonl_rows(text: str) -> Iterator[tuple[int, dict | str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"not valid JSON ({exc.msg})"
            continue
        yield number, value if isinstance(value, dict) else "not a JSON object"


def _csv_rows(text: str) -> Iterator[tuple[int, dict | str]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "text" not in reader.fieldnames:
        raise BadInput("the CSV file needs a header row with a 'text' column",
                       hint="columns: id,text,voice,language,format")
    for row in reader:
        yield reader.line_num, {k: v for k, v in row.items() if k is not None}


FIELDS = ("id", "text", "voice", "language", "format")


def _item(line: int, row: dict[str, Any]) -> BatchItem | BadLine:
    for name in FIELDS:
        value = row.get(name)
        if value is not None and not isinstance(value, str) and not (name == "id" and isinstance(value, int)):
            return BadLine(line, f"field {name!r} must be a string, not {type(value).__name__}")
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        return BadLine(line, "empty or missing 'text'")
    item_id = str(row.get("id") or f"{line:05d}")
    if not ITEM_ID.fullmatch(item_id):
        return BadLine(line, f"invalid id {item_id!r} (letters, digits, '.', '_', '-')")
    fmt = row.get("format") or None
    if fmt is not None and fmt not in audio_mod.FORMATS:
        return BadLine(line, f"unsupported format {fmt!r}")
    return BatchItem(line, item_id, text, row.get("voice") or None, row.get("language") or None, fmt)


def _manifest_records(out_dir: Path) -> list[dict[str, Any]]:
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        return []
    records = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
    return records


def finished_ids(out_dir: Path) -> set[str]:
    """Items recorded as ok in the manifest whose file still exists."""
    return {r["id"] for r in _manifest_records(out_dir)
            if r.get("status") == "ok" and (out_dir / str(r.get("file", ""))).is_file()}


def append_manifest(out_dir: Path, record: dict[str, Any]) -> None:
    path = out_dir / MANIFEST
    torn = False
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as tail:
            tail.seek(-1, os.SEEK_END)
            torn = tail.read(1) != b"\n"
    with path.open("a", encoding="utf-8") as handle:
        # A crash can leave a last line without its newline: start ours on a fresh line.
        handle.write(("\n" if torn else "") + json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# item -> (encoded audio, summary with audio_seconds and rtf)
Synthesize = Callable[[BatchItem], tuple[bytes, dict[str, Any]]]


@dataclass
class BatchReport:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    invalid: int = 0


def run_batch(items: list[BatchItem | BadLine], out_dir: Path, default_format: str, synthesize: Synthesize,
              on_item: Callable[[str], None] | None = None, subtitle_format: str | None = None) -> BatchReport:
    """Synthesize every item not yet done; record each outcome in the manifest.  With
    ``subtitle_format`` (srt, vtt), each item's subtitles are written beside its audio."""
    out_dir.mkdir(parents=True, exist_ok=True)
    done = finished_ids(out_dir)
    reported = {r.get("line") for r in _manifest_records(out_dir) if r.get("status") == "invalid"}
    report = BatchReport()
    note = on_item or (lambda _message: None)
    for item in items:
        if isinstance(item, BadLine):
            report.invalid += 1
            note(f"line {item.line}: skipped: {item.message}")
            if item.line not in reported:  # a rerun reports it again, but records it once
                append_manifest(out_dir, {"line": item.line, "status": "invalid", "error": item.message})
            continue
        if item.id in done:
            report.skipped += 1
            continue
        fmt = item.format or default_format
        name = f"{item.id}.{fmt}"
        started = time.perf_counter()
        try:
            data, summary = synthesize(item)
            if subtitle_format is not None:  # first, so that a written audio file means a complete item
                write_subtitles(out_dir / f"{item.id}.{subtitle_format}", summary.get("chunks", []), subtitle_format)
            write_atomic(out_dir / name, data)
        except QttsError as exc:
            report.failed += 1
            note(f"line {item.line} ({item.id}): {exc.message}")
            append_manifest(out_dir, {"id": item.id, "line": item.line, "status": "error",
                                      "error": {"category": exc.category, "message": exc.message, "hint": exc.hint}})
            continue
        report.ok += 1
        append_manifest(out_dir, {"id": item.id, "line": item.line, "status": "ok", "file": name,
                                  "audio_seconds": summary.get("audio_seconds"),
                                  "elapsed_seconds": round(time.perf_counter() - started, 3),
                                  "rtf": summary.get("rtf")})
    return report
