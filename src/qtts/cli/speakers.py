"""``qtts speakers``: the preset speakers of a CustomVoice model (read from its config)."""

from __future__ import annotations

import click

from qtts.cli.options import info, print_json, settings_from


@click.command()
@click.option("--model-id", default=None, help="A CustomVoice model (default: QTTS_MODEL_ID / the configured one).")
@click.option("--json", "as_json", is_flag=True, help="Print the speakers as JSON on stdout.")
@click.pass_context
def speakers(ctx: click.Context, model_id: str | None, as_json: bool) -> None:
    """List a CustomVoice model's preset speakers and their native languages."""
    from qtts.errors import WrongModelKind
    from qtts.hub import CUSTOM_VOICE, SPEAKER_LANGUAGES, resolve_model

    model = resolve_model(model_id or settings_from(ctx).model_id)
    if model.tts_model_type != CUSTOM_VOICE:
        raise WrongModelKind(f"{model.model_id} is a {model.kind} model; only CustomVoice models have preset speakers",
                             hint="pass --model-id 1.7b-custom (or 0.6b-custom)")
    rows = [{"speaker": name, "native_language": SPEAKER_LANGUAGES.get(name, "unknown")} for name in model.speakers]
    if as_json:
        print_json({"model_id": model.model_id, "takes_instructions": model.takes_instructions, "speakers": rows})
        return
    for row in rows:
        click.echo(f"{row['speaker']}\t{row['native_language']}")
    info(f"{len(rows)} speakers of {model.model_id}"
         + ("; --instruct sets the speaking style" if model.takes_instructions else "; this size takes no --instruct"))
