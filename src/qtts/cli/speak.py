"""``qtts speak``: text in, audio file (or stdout) out."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from qtts import audio as audio_mod
from qtts import subtitles
from qtts.cli.options import (
    FiniteFloat,
    engine_option,
    expressive_options,
    expressive_values,
    format_option,
    language_option,
    model_options,
    print_json,
    read_text,
    seed_option,
    speaker_options,
    text_options,
    voice_option,
    with_settings,
)
from qtts.cli.progress import SynthesisProgress
from qtts.errors import BadInput
from qtts.request import SpeakRequest, VoiceSource, build_request
from qtts.settings import Settings
from qtts.subtitles import write_subtitles
from qtts.synthesis import check_streamable, prepare, speak_to_file, stream_to


@click.command()
@text_options
@voice_option()
@click.option("--ref-audio", type=click.Path(dir_okay=False, path_type=Path),
              help="Ad-hoc reference clip instead of --voice-id.")
@click.option("--ref-text", help="Transcript of --ref-audio (ICL mode).")
@click.option("--x-vector-only", is_flag=True, help="With --ref-audio: clone from the speaker embedding only.")
@speaker_options
@language_option()
@click.option("-o", "--out", default=None, help="Output file (.wav .flac .mp3 .ogg .opus .pcm) or '-' for stdout.")
@click.option("--play", is_flag=True, help="Play the audio on the default output device as it is generated "
              "(--out optional: also write the file).")
@format_option(default=None, help="Output format when --out is '-' (default wav).")
@click.option("--split-max-chars", type=click.IntRange(min=20), default=None,
              help="Longest chunk synthesized at once (default 200).")
@click.option("--timeout", "timeout_s", type=FiniteFloat(min=0), default=None,
              help="Give up after this many seconds (0 = never).")
@seed_option
@click.option("--temperature", type=FiniteFloat(min=0.01), default=None)
@click.option("--top-k", type=click.IntRange(min=1), default=None)
@click.option("--top-p", type=FiniteFloat(min=0.01, max=1.0), default=None)
@click.option("--repetition-penalty", type=FiniteFloat(min=1.0), default=None)
@click.option("--greedy", is_flag=True, help="Disable sampling (deterministic, less natural).")
@click.option("--max-frames", type=click.IntRange(min=2), default=None,
              help="Cap on frames per chunk (12.5 frames = 1 s).")
@click.option("--stream", is_flag=True, help="With --out -: write pcm/wav audio as it is generated.")
@click.option("--batch-size", type=click.IntRange(1, 16), default=None,
              help="Chunks generated together (faster for long texts, more memory; default 4, "
              "env QTTS_BATCH_SIZE). The memory pre-check counts them.")
@expressive_options
@click.option("--subtitles", "subtitles_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write subtitles timed from the chunks as synthesized (.srt or .vtt).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout (with each chunk's start "
              "and end in seconds).")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary on stderr (errors still).")
@model_options
@engine_option
@with_settings
def speak(settings: Settings, text_arg: str | None, text: str | None, text_file: Path | None, voice_id: str | None,
          ref_audio: Path | None, ref_text: str | None, x_vector_only: bool, speaker: str | None,
          instruct: str | None, language: str | None, out: str | None, play: bool,
          fmt: str | None, split_max_chars: int | None, timeout_s: float | None, seed: int | None,
          temperature: float | None, top_k: int | None, top_p: float | None, repetition_penalty: float | None,
          greedy: bool, max_frames: int | None, stream: bool, batch_size: int | None, speed: float | None,
          no_markup: bool, read_numbers: bool, subtitles_path: Path | None, as_json: bool, quiet: bool) -> None:
    """Synthesize TEXT in a cloned voice, a preset speaker, or a described voice.

    \b
    qtts speak --voice-id me --text "Hello there." --out hello.wav
    echo "Hello" | qtts speak --voice-id me --out - > hello.wav
    qtts speak --model-id 1.7b-custom --speaker ryan --instruct "cheerful" --text "Hi!" --out hi.wav
    qtts speak --model-id 1.7b-design --instruct "a calm older man" --text "Hi!" --out hi.wav
    qtts speak --voice-id me --speed 0.9 --subtitles talk.srt --out talk.wav \\
        --text "First part. [pause:1s] Second part."
    """
    to_stdout = out == "-"
    if out is None and not play:
        raise BadInput("no output given", hint="pass --out FILE, --out - for stdout, or --play for the speakers")
    if play and (stream or to_stdout):
        raise BadInput("--play sends the audio to the speakers as it is generated",
                       hint="drop --stream and --out - (--out FILE also keeps a file)")
    if stream and not to_stdout:
        raise BadInput("--stream writes to stdout", hint="use --out - (and --format pcm or wav)")
    if subtitles_path is not None:
        if stream or play:
            raise BadInput("--subtitles times the chunks of a whole file", hint="drop --stream and --play")
        subtitle_format = subtitles.format_of(subtitles_path)
    if to_stdout and as_json:
        raise BadInput("--json and --out - both want stdout", hint="write the audio to a file with --out FILE")
    if to_stdout or out is None:
        output_format = audio_mod.check_format(fmt or "wav")
    else:
        output_format = audio_mod.format_for_path(out)
        if fmt is not None and audio_mod.check_format(fmt) != output_format:
            raise BadInput(f"--format {fmt} does not match the file name {out} ({output_format})",
                           hint="the file's extension sets its format: drop --format, or change the extension")
    if batch_size is not None:  # in the settings too: the memory pre-check reads them
        settings = settings.replace(batch_size=batch_size)
    request = build_request(
        settings, read_text(text_arg, text, text_file, settings.max_text_chars),
        VoiceSource(voice_id=voice_id, ref_audio=ref_audio, ref_text=ref_text, x_vector_only=x_vector_only,
                    speaker=speaker),
        instruct=instruct, language=language, output_format=output_format, split_max_chars=split_max_chars,
        timeout_s=timeout_s, seed=seed, temperature=temperature, top_k=top_k, top_p=top_p,
        repetition_penalty=repetition_penalty, greedy=greedy, max_frames=max_frames,
        **expressive_values(speed, no_markup, read_numbers),
    )

    watch = SynthesisProgress(quiet)
    progress = watch.message
    if play:
        try:
            summary = _play(settings, request, Path(out) if out else None, progress, watch)
        finally:
            watch.close()
        progress(f"played {summary['audio_seconds']:.2f} s of audio (first audio after "
                 f"{summary['time_to_first_audio_seconds']:.2f} s)" + (f" -> {out}" if out else ""))
        if as_json:
            print_json(summary)
        return
    write = _write_stdout if stream else None
    try:
        summary = _speak(settings, request, None if to_stdout else Path(out), progress, watch, write)
    finally:
        watch.close()
    engine = summary["engine"]
    where = (f"engine pid {engine['pid']}, {'model already loaded' if engine['warm'] else 'model loaded now'}"
             if engine["served"] else f"model load {summary['load_seconds']:.1f} s")
    if stream:
        progress(f"{summary['audio_seconds']:.2f} s of audio in {summary['elapsed_seconds']:.2f} s "
                 f"(RTF {summary['rtf']:.2f}, first audio after {summary['time_to_first_audio_seconds']:.2f} s; "
                 f"{where})")
        return
    if to_stdout:
        _write_stdout(summary.pop("audio_bytes"))
    else:
        summary.pop("audio_bytes", None)
    progress(f"{summary['audio_seconds']:.2f} s of audio in {summary['elapsed_seconds']:.2f} s "
             f"(RTF {summary['rtf']:.2f}, {where})" + ("" if to_stdout else f" -> {out}"))
    if subtitles_path is not None:
        write_subtitles(subtitles_path, summary["chunks"], subtitle_format)
        summary["subtitles"] = str(subtitles_path)
    if as_json:
        print_json(summary)


def _write_stdout(data: bytes) -> None:
    """stdout as a file like any other: a full device is ``DiskFull`` (exit 9), a reader that
    went away (a closed or broken pipe) ``OutputFailed`` (exit 11); never a traceback."""
    import os

    from qtts.errors import os_error

    try:
        view = memoryview(data)
        while view:  # a pipe whose reader goes away takes part of a write, and says so only then
            view = view[sys.stdout.buffer.write(view):]
        sys.stdout.buffer.flush()
    except OSError as exc:
        # Nothing more can reach stdout; send what Python would still flush at exit nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        raise os_error(exc, "the audio to stdout") from exc


def _play(settings: Settings, request: SpeakRequest, out_path: Path | None, progress: Callable[[str], None],
          watch: SynthesisProgress) -> dict[str, Any]:
    """Stream to the platform's player (``qtts.playback``); with ``out_path``, also keep the
    audio and write it (atomically, in the file's format) once it is complete."""
    from dataclasses import replace

    from qtts.files import write_atomic
    from qtts.playback import open_player

    file_format = request.output_format
    prepare(settings, replace(request, output_format="pcm"))  # bad input fails before a player starts
    player = open_player(audio_mod.SAMPLE_RATE)
    kept: list[bytes] = []

    def write(pcm: bytes) -> None:
        player.write(pcm)
        if out_path is not None:
            kept.append(pcm)

    try:
        summary = _speak(settings, replace(request, output_format="pcm"), None, progress, watch, write)
    except BaseException:
        player.abort()
        raise
    player.close()
    summary["player"] = player.name
    if out_path is not None:
        import numpy as np

        samples = np.frombuffer(b"".join(kept), dtype="<i2").astype(np.float32) / 32768.0
        write_atomic(out_path, audio_mod.encode(audio_mod.Audio(samples), file_format))
        summary["output"] = str(out_path)
        summary["format"] = file_format
    return summary


def _speak(settings: Settings, request: SpeakRequest, out_path: Path | None, progress: Callable[[str], None],
           watch: SynthesisProgress, write: Callable[[bytes], None] | None) -> dict[str, Any]:
    """Through the resident engine when it is on and can start, else in this process."""
    if settings.engine:
        from qtts.resident.calls import speak_via_engine

        if write is not None:
            check_streamable(request)
        _, _, request = prepare(settings, request)  # bad input fails here, before any engine starts
        summary = speak_via_engine(settings, request, out_path, progress, on_frames=watch.frames, write=write)
        if summary is not None:
            return summary
    if write is not None:
        summary = stream_to(settings, request, write, progress=progress)
    else:
        summary = speak_to_file(settings, request, out_path, progress=progress, on_frames=watch.frames)
    summary["engine"] = {"served": False}
    return summary
