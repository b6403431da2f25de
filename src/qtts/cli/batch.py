"""``qtts batch``: a file of texts into a directory of audio files, resumable."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from qtts.cli.options import (
    engine_option,
    expressive_options,
    expressive_values,
    format_option,
    info,
    language_option,
    model_options,
    print_json,
    seed_option,
    speaker_options,
    voice_option,
    with_settings,
)
from qtts.settings import Settings

if TYPE_CHECKING:
    from qtts.hub import ResolvedModel


@click.command()
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help=".txt (one text per line), .jsonl or .csv (fields id, text, voice, language, format).")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@voice_option(help="Voice for items that name none.")
@speaker_options
@language_option(help="Language for items that name none (default: QTTS_LANGUAGE, else Auto).")
@format_option(help="Format for items that name none: wav flac mp3 ogg opus pcm.")
@seed_option
@click.option("--max-frames", type=click.IntRange(min=2), default=None, help="Cap on frames per chunk.")
@expressive_options
@click.option("--subtitles", "subtitle_format", type=click.Choice(["srt", "vtt"]), default=None,
              help="Also write each item's subtitles beside its audio (ID.srt or ID.vtt).")
@click.option("--via-queue", is_flag=True, help="Submit to a running 'qtts serve' instead of loading the model here.")
@click.option("--server", default=None, help="With --via-queue: server URL. Env QTTS_SERVER_URL.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON on stdout.")
@model_options
@engine_option
@with_settings
def batch(settings: Settings, input_path: Path, out_dir: Path, voice_id: str | None, speaker: str | None,
          instruct: str | None, language: str | None, fmt: str,
          seed: int | None, max_frames: int | None, speed: float | None, no_markup: bool, read_numbers: bool,
          subtitle_format: str | None, via_queue: bool, server: str | None, as_json: bool) -> None:
    """Synthesize every line of INPUT into OUT-DIR; rerun to resume after a failure."""
    from tqdm import tqdm

    from qtts import audio as audio_mod
    from qtts.batch import BatchItem, read_items, run_batch
    from qtts.request import SpeakRequest, VoiceSource, build_request, voice_source
    from qtts.synthesis import synthesize_request, validate_request
    from qtts.voices import VoiceLibrary

    audio_mod.check_format(fmt)
    items = list(read_items(input_path))
    library = VoiceLibrary(settings.voices_dir)

    def request_for(item: BatchItem, model: "ResolvedModel | None" = None) -> SpeakRequest:
        """A line's ``voice`` is read as the model reads it (a preset speaker on CustomVoice);
        through the queue, the server does that."""
        if speaker:
            voice = VoiceSource(speaker=item.voice or speaker)
        elif model is not None:
            voice = voice_source(item.voice or voice_id, model)
        else:
            voice = VoiceSource(voice_id=item.voice or voice_id)
        return build_request(settings, item.text, voice, instruct=instruct,
                             language=item.language or language, output_format=item.format or fmt, seed=seed,
                             max_frames=max_frames, **expressive_values(speed, no_markup, read_numbers))

    if via_queue:
        synthesize = _via_queue(settings.replace(server_url=server) if server else settings, request_for)
    else:
        from qtts.engine.core import Engine
        from qtts.hub import resolve_model

        engine: list[Any] = []
        model: list[Any] = []
        in_process = [not settings.engine]

        def synthesize(item: BatchItem) -> tuple[bytes, dict]:
            if not model:  # the model's config, read once
                model.append(resolve_model(settings.model_id))
            request = validate_request(settings, library, request_for(item, model[0]), model[0])
            if not in_process[0]:
                from qtts.resident.calls import speak_via_engine

                summary = speak_via_engine(settings, request, None, say=info)
                if summary is not None:
                    return summary.pop("audio_bytes"), summary
                in_process[0] = True
            if not engine:  # load on the first valid item, not for a file of bad lines
                info(f"loading {settings.model_id} ...")
                engine.append(Engine.load(settings))
            return synthesize_request(engine[0], library, request)

    with tqdm(total=len(items), unit="item", file=sys.stderr, disable=None) as bar:
        def step(item: BatchItem) -> tuple[bytes, dict]:
            try:
                return synthesize(item)
            finally:
                bar.update(1)

        def note(message: str) -> None:
            bar.write(message, file=sys.stderr)

        report = run_batch(items, out_dir, fmt, step, on_item=note, subtitle_format=subtitle_format)
    summary = {"ok": report.ok, "failed": report.failed, "skipped": report.skipped, "invalid": report.invalid,
               "manifest": str(out_dir / "manifest.jsonl")}
    info(f"{report.ok} done, {report.skipped} already done, {report.failed} failed, {report.invalid} invalid lines "
         f"-> {summary['manifest']}")
    if as_json:
        print_json(summary)
    if report.failed or report.invalid:
        raise SystemExit(1)


def _via_queue(settings: Settings, request_for):  # noqa: ANN001, ANN202
    from qtts.client import Client
    from qtts.errors import QttsError

    client = Client(settings.client_url, settings.api_key)

    def synthesize(item) -> tuple[bytes, dict]:  # noqa: ANN001
        request = request_for(item)
        body = {"input": request.text, "voice": request.voice.voice_id or request.voice.speaker,
                "instructions": request.instruct, "language": request.language,
                "response_format": request.output_format, "seed": request.seed, "max_frames": request.max_frames,
                "speed": request.speed, "markup": request.markup, "read_numbers": request.read_numbers}
        job = client.submit({k: v for k, v in body.items() if v is not None})
        while job["status"] in ("queued", "running"):
            time.sleep(0.5)
            job = client.job(job["id"])
        if job["status"] != "succeeded":
            error = job.get("error") or {}
            raise QttsError(error.get("message", f"job {job['status']}"), hint=error.get("hint", ""))
        return client.audio(job["id"]), job["result"]

    return synthesize
