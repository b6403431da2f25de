"""``qtts clone``: the persistent voice library."""

from __future__ import annotations

from pathlib import Path

import click

from qtts.cli.options import (
    engine_option,
    info,
    language_option,
    model_options,
    print_json,
    seed_option,
    settings_from,
)
from qtts.settings import Settings
from qtts.voices import VoiceInfo, VoiceLibrary


@click.group()
def clone() -> None:
    """Create, list, show, export, import and delete cloned voices."""


@clone.command("create")
@click.option("--voice-id", required=True, help="Name for the voice: a-z, 0-9, '-' and '_' (max 64).")
@click.option("--ref-audio", type=click.Path(dir_okay=False, path_type=Path),
              help="Reference clip (wav, flac, mp3, ogg; any sample rate; 3-15 s of clean speech is best).")
@click.option("--ref-text", default=None, help="What is said in the clip (required unless --x-vector-only).")
@click.option("--x-vector-only", is_flag=True,
              help="Clone from the speaker embedding alone (no transcript; lower fidelity).")
@click.option("--design", default=None,
              help="Instead of a clip: describe the voice ('a calm, low-pitched older man'); a VoiceDesign model "
              "speaks a sample in it once, and the library keeps that clip (default --model-id 1.7b-design).")
@click.option("--sample-text", default=None, help="With --design: the sentence spoken for the reference clip.")
@language_option(help="With --design: the sample's language (default Auto).")
@seed_option
@click.option("--force", is_flag=True, help="Replace an existing voice with this id.")
@click.option("--json", "as_json", is_flag=True, help="Print the voice as JSON on stdout.")
@model_options
@engine_option
@click.pass_context
def create(ctx: click.Context, voice_id: str, ref_audio: Path | None, ref_text: str | None, x_vector_only: bool,
           design: str | None, sample_text: str | None, language: str | None, seed: int | None, force: bool,
           as_json: bool, **model_flags: object) -> None:
    """Clone a voice from a reference clip (or design one) and store it in the library."""
    from qtts.errors import BadInput

    if design is not None:
        if ref_audio is not None or ref_text is not None or x_vector_only:
            raise BadInput("--design makes its own reference clip",
                           hint="drop --ref-audio, --ref-text and --x-vector-only")
        from qtts.design import DESIGN_MODEL, DesignRequest, design_voice

        model_id = str(model_flags.pop("model_id", None) or DESIGN_MODEL)
        settings = settings_from(ctx, **model_flags)
        voice = design_voice(settings, DesignRequest(voice_id, design, sample_text, language or settings.language,
                                                     seed, model_id, force), say=info)
        info(f"designed voice {voice.voice_id!r} ({voice.duration_s:.1f} s reference); speak with it on a Base "
             f"model: qtts speak --voice-id {voice.voice_id} ...")
    else:
        if ref_audio is None:
            raise BadInput("a voice needs a reference clip or a description",
                           hint="pass --ref-audio (with --ref-text), or --design \"a description of the voice\"")
        if sample_text is not None:
            raise BadInput("--sample-text goes with --design", hint="drop --sample-text")
        voice = _clone_from_clip(settings_from(ctx, **model_flags), voice_id, ref_audio, ref_text, x_vector_only, force)
        info(f"created voice {voice.voice_id!r} ({voice.mode}, {voice.duration_s:.1f} s reference)")
    if as_json:
        print_json(voice.to_dict())


def _clone_from_clip(settings: Settings, voice_id: str, ref_audio: Path, ref_text: str | None, x_vector_only: bool,
                     force: bool) -> "VoiceInfo":
    from qtts.synthesis import check_clone

    library, reference = check_clone(settings, voice_id, ref_audio, ref_text, x_vector_only, force)
    if settings.engine:
        from qtts.resident.calls import clone_via_engine

        served = clone_via_engine(settings, voice_id, ref_audio, ref_text, x_vector_only, force, say=info)
        if served is not None:
            return library.get(served["voice_id"])
    from qtts.engine.core import Engine

    info(f"loading {settings.model_id} ...")
    engine = Engine.load(settings)
    return library.create(voice_id, reference, ref_text, x_vector_only, engine, overwrite=force)


@clone.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_voices(ctx: click.Context, as_json: bool) -> None:
    """List the voices in the library."""
    voices = VoiceLibrary(settings_from(ctx).voices_dir).list()
    if as_json:
        print_json([v.to_dict() for v in voices])
        return
    if not voices:
        info("no voices yet: create one with 'qtts clone create'")
    for voice in voices:
        click.echo(f"{voice.voice_id}\t{voice.mode}\t{voice.duration_s:.1f}s\t{voice.created}\t{voice.ref_text[:50]}")


@clone.command("show")
@click.argument("voice_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show(ctx: click.Context, voice_id: str, as_json: bool) -> None:
    """Show one voice."""
    voice = VoiceLibrary(settings_from(ctx).voices_dir).get(voice_id)
    if as_json:
        print_json(voice.to_dict())
        return
    for key, value in voice.to_dict().items():
        click.echo(f"{key}: {value}")


@clone.command("export")
@click.argument("voice_id")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def export(ctx: click.Context, voice_id: str, file: Path) -> None:
    """Write a voice to one FILE (its clip, transcript and derived prompts) to carry it to
    another machine: 'qtts clone import FILE' there."""
    from qtts.files import write_atomic
    from qtts.voice_archive import export_voice

    data = export_voice(VoiceLibrary(settings_from(ctx).voices_dir), voice_id)
    write_atomic(file, data)
    info(f"exported voice {voice_id!r} to {file} ({len(data) / 1024:.0f} KiB)")


@clone.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--voice-id", default=None, help="Store it under this id (default: the id it was exported with).")
@click.option("--force", is_flag=True, help="Replace an existing voice with this id.")
@click.option("--json", "as_json", is_flag=True, help="Print the voice as JSON on stdout.")
@click.pass_context
def import_(ctx: click.Context, file: Path, voice_id: str | None, force: bool, as_json: bool) -> None:
    """Add a voice from a FILE written by 'qtts clone export'."""
    from qtts.errors import TooLarge
    from qtts.voice_archive import MAX_ARCHIVE_BYTES, import_voice

    settings = settings_from(ctx)
    if file.stat().st_size > MAX_ARCHIVE_BYTES:
        raise TooLarge(f"{file} is over {MAX_ARCHIVE_BYTES // (1024 * 1024)} MiB: not a voice file",
                       hint="pass a file written by 'qtts clone export'")
    voice = import_voice(VoiceLibrary(settings.voices_dir), file.read_bytes(), voice_id, force,
                         settings.max_reference_s)
    info(f"imported voice {voice.voice_id!r} ({voice.mode}, {voice.duration_s:.1f} s reference, "
         f"prompts for {', '.join(voice.families) or 'no model yet'})")
    if as_json:
        print_json(voice.to_dict())


@clone.command("delete")
@click.argument("voice_id")
@click.pass_context
def delete(ctx: click.Context, voice_id: str) -> None:
    """Delete a voice."""
    VoiceLibrary(settings_from(ctx).voices_dir).delete(voice_id)
    info(f"deleted voice {voice_id!r}")
