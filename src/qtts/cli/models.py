"""``qtts models``: download, list and build model checkpoints."""

from __future__ import annotations

from pathlib import Path

import click

from qtts.checkpoints.presets import PRESETS
from qtts.cli.options import info, print_json, settings_from


@click.group()
def models() -> None:
    """Download, list and build models."""


@models.command("pull")
@click.argument("model_id", default="1.7b")
def pull(model_id: str) -> None:
    """Download MODEL_ID (alias, repo id; default 1.7b) into the Hugging Face cache."""
    from qtts.hub import expand_alias, pull_model

    info(f"downloading {expand_alias(model_id)} ...")
    path = pull_model(model_id)
    info(f"done: {path}")


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_models(ctx: click.Context, as_json: bool) -> None:
    """Show the Qwen3-TTS models in the Hugging Face cache, and qtts's quantized-weight cache."""
    from qtts.engine.weights import cache as weight_cache
    from qtts.hub import ALIASES, list_cached_models

    cached = list_cached_models()
    weights = weight_cache.entries(settings_from(ctx).home)
    if as_json:
        print_json({"models": [{"repo_id": m.repo_id, "kind": m.kind, "size_bytes": m.size_bytes, "path": str(m.path)}
                               for m in cached],
                    "quantized_weights": weights})
        return
    if not cached:
        info(f"no models cached; fetch one with 'qtts models pull' (aliases: {', '.join(ALIASES)})")
    for model in cached:
        click.echo(f"{model.repo_id}\t{model.kind}\t{model.size_bytes / 1e9:.2f} GB\t{model.path}")
    for entry in weights:
        click.echo(f"quantized weights\t{entry['size_bytes'] / 1e9:.2f} GB\t{entry['path']}\t"
                   f"{weight_cache.describe(entry['metadata'])}")


@models.command("prune")
@click.pass_context
def prune_models(ctx: click.Context) -> None:
    """Delete qtts's quantized-weight cache (rebuilt on the next load of each model)."""
    from qtts.engine.weights import cache as weight_cache

    removed = weight_cache.prune(settings_from(ctx).home)
    info(f"removed {len(removed)} quantized-weight file(s)")


@models.command("build-random")
@click.option("--preset", type=click.Choice(PRESETS), required=True)
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
        built = build_random_checkpoint(preset, out_dir, seed=seed, overwrite=force, say=info)
    except FileExistsError as exc:
        raise BadInput(str(exc), hint="choose another --out or add --force") from exc
    info(f"built {built.preset} checkpoint: {built.parameters / 1e6:.1f}M parameters, "
         f"{built.size_bytes / 1e6:.1f} MB at {built.path}")
