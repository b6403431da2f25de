"""The ``qtts`` command: a click group whose commands live one group per module.

Errors are mapped here, once: a ``QttsError`` prints ``error: …`` and ``hint: …`` on stderr
and exits with its class's ``exit_code`` (the table is ``qtts.errors``); a traceback only with
``--debug`` or ``QTTS_DEBUG=1``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from qtts.errors import QttsError


class QttsGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except QttsError as exc:
            if _debug(ctx):
                raise
            click.echo(f"error: {exc.message}", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


def _debug(ctx: click.Context) -> bool:
    return bool((ctx.obj or {}).get("debug")) or os.environ.get("QTTS_DEBUG", "") not in ("", "0")


@click.group(cls=QttsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False), default=None,
              help="Data directory (voices, jobs). Env QTTS_HOME; default ~/.local/share/qtts.")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="qtts")
@click.pass_context
def cli(ctx: click.Context, home: str | None, verbose: int, debug: bool) -> None:
    """qtts: local, CPU-only Qwen3-TTS (voice cloning, preset speakers, voice design).

    \b
    Quick start:
      qtts doctor                       check this machine
      qtts clone create --voice-id me --ref-audio me.wav --ref-text "what I say"
      qtts speak --voice-id me --text "Hello!" --out hello.wav
    """
    level = logging.WARNING - 10 * verbose if not debug else logging.DEBUG
    logging.basicConfig(level=max(level, logging.DEBUG), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = {"home": home, "debug": debug}


def _register() -> None:
    from qtts.cli import batch, bench, clone, doctor, engine, models, queue, serve, speak, speakers

    for command in (speak.speak, clone.clone, batch.batch, queue.queue, serve.serve, serve.worker, models.models,
                    doctor.doctor, bench.bench, speakers.speakers, engine.engine):
        cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="qtts")
