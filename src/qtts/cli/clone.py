"""``qtts clone``: the persistent voice library."""

from __future__ import annotations

from pathlib import Path

import click

from qtts.cli.options import info, model_options, print_json, settings_from, with_settings
from qtts.settings import Settings
from qtts.synthesis import load_reference
from qtts.voices import VoiceLibrary, validate_voice_id


@click.group()
def clone() -> None:
    """Create, list, show and delete cloned voices."""


@clone.command("create")
@click.option("--voice-id", required=True, help="Name for the voice: a-z, 0-9, '-' and '_' (max 64).")
@click.option("--ref-audio", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Reference clip (wav, flac, mp3, ogg; any sample rate; 3-15 s of clean speech is best).")
@click.option("--ref-text", default=None, help="What is said in the clip (required unless --x-vector-only).")
@click.option("--x-vector-only", is_flag=True, help="Clone from the speaker embedding alone (no transcript; lower fidelity).")
@click.option("--force", is_flag=True, help="Replace an existing voice with this id.")
@click.option("--json", "as_json", is_flag=True, help="Print the voice as JSON on stdout.")
@model_options
@with_settings
def create(settings: Settings, voice_id: str, ref_audio: Path, ref_text: str | None, x_vector_only: bool,
           force: bool, as_json: bool) -> None:
    """Clone a voice from a reference clip and store it in the library."""
    from qtts.engine.core import Engine
    from qtts.errors import BadInput

    library = VoiceLibrary(settings.voices_dir)
    validate_voice_id(voice_id)
    if library.exists(voice_id) and not force:
        raise BadInput(f"voice {voice_id!r} already exists",
                       hint=f"choose another id, add --force, or 'qtts clone delete {voice_id}'")
    if not x_vector_only and not (ref_text or "").strip():
        raise BadInput("--ref-text is required in ICL mode",
                       hint="pass the words spoken in the clip, or add --x-vector-only")
    reference = load_reference(settings, ref_audio)
    info(f"loading {settings.model_id} ...")
    engine = Engine.load(settings)
    voice = library.create(voice_id, reference, ref_text, x_vector_only, engine, overwrite=force)
    info(f"created voice {voice.voice_id!r} ({voice.mode}, {voice.duration_s:.1f} s reference)")
    if as_json:
        print_json(voice.to_dict())


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


@clone.command("delete")
@click.argument("voice_id")
@click.pass_context
def delete(ctx: click.Context, voice_id: str) -> None:
    """Delete a voice."""
    VoiceLibrary(settings_from(ctx).voices_dir).delete(voice_id)
    info(f"deleted voice {voice_id!r}")
