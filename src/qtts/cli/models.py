"""``qtts models``: download, list and build model checkpoints."""

from __future__ import annotations

from pathlib import Path

import click

from qtts.cli.options import info, print_json


@click.group()
def models() -> None:
    """Download, list and build models."""


@models.command("pull")
@click.argument("model_id", default="1.7b")
def pull(model_id: str) -> None:
    """Download MODEL_ID (alias, repo id; default 1.7b) into the Hugging Face cache."""
    from qtts.models import expand_alias, pull_model

    info(f"downloading {expand_alias(model_id)} ...")
    path = pull_model(model_id)
    info(f"done: {path}")


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_models(as_json: bool) -> None:
    """Show the Qwen3-TTS models in the Hugging Face cache and their sizes."""
    from qtts.models import ALIASES, list_cached_models

    cached = list_cached_models()
    if as_json:
        print_json([{"repo_id": m.repo_id, "size_bytes": m.size_bytes, "path": str(m.path)} for m in cached])
        return
    if not cached:
        info(f"no models cached; fetch one with 'qtts models pull' (aliases: {', '.join(ALIASES)})")
    for model in cached:
        click.echo(f"{model.repo_id}\t{model.size_bytes / 1e9:.2f} GB\t{model.path}")


@models.command("build-random")
@click.option("--preset", type=click.Choice(["tiny", "0.6b", "1.7b"]), required=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing directory.")
def build_random(preset: str, out_dir: Path, seed: int, force: bool) -> None:
    """Build a random-weight checkpoint of the real architecture (tests, benchmarks).

    Random weights produce noise, not speech, and rarely stop on their own: cap frames.
    """
    from qtts.checkpoints.builder import build_random_checkpoint
    from qtts.errors import BadInput

    try:
        built = build_random_checkpoint(preset, out_dir, seed=seed, overwrite=force)
    except FileExistsError as exc:
        raise BadInput(str(exc), hint="choose another --out or add --force") from exc
    info(f"built {built.preset} checkpoint: {built.parameters / 1e6:.1f}M parameters, "
         f"{built.size_bytes / 1e6:.1f} MB at {built.path}")
