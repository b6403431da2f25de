"""``qtts bench``: measure upstream and qtts side by side on a full-size random checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import click

from qtts.cli.options import info, settings_from


@click.command()
@click.option("--model", "preset", type=click.Choice(["1.7b", "0.6b", "1.7b-custom", "0.6b-custom", "1.7b-design"]),
              default="1.7b", show_default=True, help="Which published model's shape (a random-weight checkpoint).")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--frames", type=click.IntRange(min=4, max=1000), default=60, show_default=True,
              help="Frames per path (12.5 frames = 1 s of audio).")
@click.option("--precision", type=click.Choice(["int4", "int8", "bf16", "fp32"]), default="int8", show_default=True,
              help="qtts path to measure.")
@click.option("--decoder-precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True)
@click.option("--batch", type=click.IntRange(min=1, max=16), default=4, show_default=True,
              help="Also measure this many chunks generated together (throughput); 1 to skip.")
@click.option("--fidelity/--no-fidelity", default=True, help="Compare logits and audio against fp32.")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the random checkpoint lives (default <home>/bench/<model>).")
@click.option("--eager-baseline/--no-eager-baseline", default=True,
              help="Also measure upstream with eager attention (the planning document's configuration).")
@click.option("--concurrency", default=None, metavar="N,N,...",
              help="Instead: start the real server and send this many concurrent speech requests per level "
              "(e.g. 1,4,8; level 1 sends the same requests one at a time).")
@click.option("--cli", "cli_runs", type=click.IntRange(min=1, max=20), default=None, metavar="RUNS",
              help="Instead: time the real 'qtts speak' process cold and warm (the resident engine), and "
              "--stream to the first audio byte, RUNS warm calls each; --frames caps the sentence.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="Also write the results as JSON: to this file, or into DIR/<machine>.json under the model's "
              "name when it is a directory (e.g. docs/bench).")
@click.pass_context
def bench(ctx: click.Context, preset: str, threads: int, frames: int, precision: str, decoder_precision: str,
          batch: int, fidelity: bool, checkpoint_dir: Path | None, eager_baseline: bool, concurrency: str | None,
          cli_runs: int | None, json_path: Path | None) -> None:
    """Benchmark upstream (fp32, as loaded by default) against qtts's fast path; print a table
    with this machine's floors (read bandwidth, GEMM rate) measured in the same run."""
    from qtts.bench.machine import slug
    from qtts.bench.runner import format_table, run_bench

    settings = settings_from(ctx)
    directory = checkpoint_dir or settings.home / "bench" / preset
    key = preset
    if cli_runs is not None:
        from qtts.bench.cli_timing import format_cli, run_cli_bench
        from qtts.bench.runner import ensure_checkpoint

        model_dir = ensure_checkpoint(preset, directory, info)
        report = run_cli_bench(model_dir, settings.home / "bench-cli", threads, frames, cli_runs, info)
        click.echo(format_cli(report))
        key = f"{preset} cli"
    elif concurrency is not None:
        from qtts.bench.concurrency import format_levels, run_concurrency

        levels = _levels(concurrency)
        report = run_concurrency(preset, directory, threads, frames, levels, info)
        click.echo(format_levels(report))
        key = f"{preset} concurrency"
    else:
        report = run_bench(preset, directory, threads, frames, precision, batch, fidelity, info, decoder_precision,
                           eager_baseline)
        click.echo(format_table(report))
    if json_path is not None:
        if json_path.is_dir():
            json_path = json_path / f"{slug(report['machine'])}.json"
            existing = json.loads(json_path.read_text(encoding="utf-8")) if json_path.is_file() else {}
            existing.setdefault("machine", report["machine"])
            existing.setdefault("runs", {})[key] = report
            payload = existing
        else:
            payload = report
        json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        info(f"wrote {json_path}")


def _levels(text: str) -> list[int]:
    from qtts.errors import BadInput

    try:
        levels = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        levels = []
    if not levels or levels[0] < 1 or levels[-1] > 64:
        raise BadInput(f"--concurrency {text!r} is not a list of request counts", hint="e.g. --concurrency 1,4,8")
    return levels
