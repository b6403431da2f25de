"""``qtts queue``: submit work to a running server, watch it, fetch the audio."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from qtts.cli.options import (
    format_option,
    info,
    language_option,
    print_json,
    read_text,
    seed_option,
    settings_from,
    speaker_options,
    text_options,
    voice_option,
)


def _client(ctx: click.Context):  # noqa: ANN202
    from qtts.client import Client

    settings = settings_from(ctx, server_url=ctx.params.get("server"), api_key=ctx.params.get("api_key"))
    return Client(settings.client_url, settings.api_key)


def server_options(func):  # noqa: ANN001, ANN201
    func = click.option("--api-key", default=None, help="Bearer key of the server. Env QTTS_API_KEY.")(func)
    return click.option("--server", default=None,
                        help="Server URL (default http://127.0.0.1:8000). Env QTTS_SERVER_URL.")(func)


@click.group()
def queue() -> None:
    """Submit jobs to 'qtts serve' and fetch their audio."""


@queue.command()
@text_options
@voice_option()
@speaker_options
@click.option("--model", default=None, help="One of the server's models (default: its first).")
@language_option(help="Language name or Auto (default: the server's setting).")
@format_option()
@seed_option
@click.option("--split-max-chars", type=click.IntRange(min=20), default=None)
@click.option("--max-frames", type=click.IntRange(min=2), default=None)
@click.option("--json", "as_json", is_flag=True)
@server_options
@click.pass_context
def submit(ctx: click.Context, server: str | None, api_key: str | None, text_arg: str | None, text: str | None,
           text_file: Path | None, voice_id: str | None, speaker: str | None, instruct: str | None,
           model: str | None, language: str | None, fmt: str, seed: int | None,
           split_max_chars: int | None, max_frames: int | None, as_json: bool) -> None:
    """Submit TEXT (or --text, --text-file, or stdin); prints the job id."""
    from qtts.errors import BadInput

    if voice_id and speaker:
        raise BadInput("give either --voice-id or --speaker", hint="--speaker is for CustomVoice models")
    body = {"input": read_text(text_arg, text, text_file, settings_from(ctx).max_text_chars),
            "voice": voice_id or speaker, "instructions": instruct,
            "model": model, "language": language, "response_format": fmt, "seed": seed,
            "split_max_chars": split_max_chars, "max_frames": max_frames}
    job = _client(ctx).submit({k: v for k, v in body.items() if v is not None})
    if as_json:
        print_json(job)
    else:
        click.echo(job["id"])


@queue.command()
@click.argument("job_id")
@click.option("--watch", is_flag=True, help="Keep polling until the job is finished.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--interval", type=float, default=1.0, show_default=True)
@server_options
@click.pass_context
def status(ctx: click.Context, server: str | None, api_key: str | None, job_id: str, watch: bool, as_json: bool,
           interval: float) -> None:
    """Show a job's status (exit 1 if it failed or was cancelled)."""
    from tqdm import tqdm

    client = _client(ctx)
    job = client.job(job_id)
    live = watch and sys.stderr.isatty()  # a bar on a terminal, a line per poll otherwise
    bar = tqdm(total=0, unit="chunk", file=sys.stderr, desc=job_id, leave=False) if live else None
    while watch and job["status"] in ("queued", "running"):
        progress = job["progress"]
        if bar is not None:
            bar.total, bar.n = progress["chunks_total"], progress["chunks_done"]
            bar.set_postfix_str(job["status"], refresh=False)
            bar.refresh()
        else:
            info(f"{job['status']}: {progress['chunks_done']}/{progress['chunks_total']} chunks")
        time.sleep(interval)
        job = client.job(job_id)
    if bar is not None:
        bar.close()
    if as_json:
        print_json(job)
    else:
        click.echo(job["status"])
        if job.get("error"):
            info(f"error: {job['error']['message']}\nhint: {job['error']['hint']}")
    if job["status"] in ("failed", "cancelled"):
        raise SystemExit(1)


@queue.command()
@click.argument("job_id")
@click.option("-o", "--out", required=True, help="Output file ('-' for stdout); the format follows the extension.")
@server_options
@click.pass_context
def fetch(ctx: click.Context, server: str | None, api_key: str | None, job_id: str, out: str) -> None:
    """Download a finished job's audio."""
    from qtts import audio as audio_mod

    fmt = None if out == "-" else audio_mod.format_for_path(out)
    data = _client(ctx).audio(job_id, fmt)
    if out == "-":
        sys.stdout.buffer.write(data)
    else:
        from qtts.files import write_atomic

        write_atomic(Path(out), data)
        info(f"wrote {out} ({len(data)} bytes)")


@queue.command("list")
@click.option("--status", "status_filter", default=None)
@click.option("--limit", type=click.IntRange(1, 200), default=20)
@click.option("--json", "as_json", is_flag=True)
@server_options
@click.pass_context
def list_jobs(ctx: click.Context, server: str | None, api_key: str | None, status_filter: str | None, limit: int,
              as_json: bool) -> None:
    """List recent jobs."""
    page = _client(ctx).jobs(limit=limit, status=status_filter)
    if as_json:
        print_json(page)
        return
    for job in page["data"]:
        progress = job["progress"]
        click.echo(f"{job['id']}\t{job['status']}\t{progress['chunks_done']}/{progress['chunks_total']}\t"
                   f"{(job['request'].get('text') or '')[:40]!r}")


@queue.command()
@click.argument("job_id")
@server_options
@click.pass_context
def cancel(ctx: click.Context, server: str | None, api_key: str | None, job_id: str) -> None:
    """Cancel a queued or running job."""
    click.echo(_client(ctx).cancel(job_id)["status"])



@queue.command()
@click.option("--older-than", default=None,
              help="Delete finished jobs older than this (e.g. 12h, 7d, 0 = all finished); default the retention "
              "setting (QTTS_JOB_RETENTION, 7d).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def prune(ctx: click.Context, older_than: str | None, as_json: bool) -> None:
    """Delete finished jobs and their audio from this machine's queue (or QTTS_QUEUE_URL's)."""
    from qtts.jobs.queue import JobQueue
    from qtts.settings import parse_duration

    settings = settings_from(ctx)
    seconds = None if older_than is None else parse_duration(older_than, "--older-than")
    removed = JobQueue(settings).prune(seconds)
    if as_json:
        print_json({"pruned": removed})
    else:
        info(f"pruned {len(removed)} finished job(s)")
