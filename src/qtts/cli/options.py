"""Options shared by the commands that load a model, and the settings they resolve to."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from qtts import cpu
from qtts.errors import BadInput
from qtts.request import SPEED_RANGE
from qtts.settings import ATTENTION, MAX_SEED, PRECISIONS, Settings

MODEL_OPTION_NAMES = ("model_id", "precision", "decoder_precision", "cpu_threads", "attn_implementation",
                      "fallback_model_id", "memory_check", "low_cpu_mem_usage", "engine")


def model_options(func: Callable[..., Any] | None = None, *, many: bool = False) -> Any:
    """--model-id and the CPU loading flags; values land in ``settings`` (see ``settings_from``).
    ``many``: --model-id may be repeated (a server or worker serving several models)."""
    if func is None:
        return functools.partial(model_options, many=many)
    decorators = [
        click.option("--model-id", default=None, multiple=many,
                     help=("Repeat to serve several models (the first is the default). " if many else "")
                     + "Alias (1.7b, 0.6b: cloning; 1.7b-custom, 0.6b-custom: preset speakers; 1.7b-design: "
                     "described voices), Hugging Face repo id, or local directory. Env QTTS_MODEL_ID."),
        click.option("--precision", type=click.Choice(PRECISIONS), default=None,
                     help=cpu.precision_help()),
        click.option("--decoder-precision", type=click.Choice(["fp32", "bf16"]), default=None,
                     help=cpu.decoder_precision_help()),
        click.option("--cpu-threads", type=click.IntRange(min=0), default=None,
                     help="Torch threads (default: one per core)."),
        click.option("--attn", "attn_implementation", type=click.Choice(ATTENTION), default=None,
                     help="Attention kernel (default sdpa, measured faster than eager on CPU)."),
        click.option("--fallback-model-id", default=None,
                     help="Load this model instead when the memory pre-check fails (e.g. 0.6b)."),
        click.option("--memory-check/--no-memory-check", default=None,
                     help="Refuse to load a model that does not fit in available RAM (default on)."),
        click.option("--low-cpu-mem/--no-low-cpu-mem", "low_cpu_mem_usage", default=None,
                     help="transformers' low-memory load (default on: with a bf16 memory map, qtts quantizes "
                     "linear by linear and releases each weight's pages); off: its regular load, which holds "
                     "more RAM. Env QTTS_LOW_CPU_MEM_USAGE."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


class FiniteFloat(click.FloatRange):
    """A float flag in a range that refuses nan and inf (which compare as neither in nor out)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        import math

        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def engine_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """--engine/--no-engine: send the work to the resident engine (``qtts.resident``)."""
    return click.option("--engine/--no-engine", "engine", default=None,
                        help="Use the resident engine, which keeps the model loaded between calls (default on; "
                        "env QTTS_ENGINE). --no-engine loads the model in this process.")(func)


def settings_from(ctx: click.Context, **flags: Any) -> Settings:
    """Resolve settings from this command's flags plus the group's ``--home``."""
    root = ctx.find_root()
    models = flags.get("model_id")
    if isinstance(models, tuple):  # a repeated --model-id: the first, then the rest
        flags = {**flags, "model_id": models[0] if models else None,
                 "more_model_ids": ",".join(models[1:]) if len(models) > 1 else None}
    return Settings.resolve({"home": (root.obj or {}).get("home"), **flags})


def pop_model_flags(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {name: kwargs.pop(name) for name in MODEL_OPTION_NAMES if name in kwargs}


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def info(message: str) -> None:
    """Progress and summaries go to stderr; stdout carries data only."""
    click.echo(message, err=True)


def with_settings(func: Callable[..., Any]) -> Callable[..., Any]:
    """Pass ``settings`` (resolved from the model flags) instead of the individual flags."""

    @functools.wraps(func)
    @click.pass_context
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        settings = settings_from(ctx, **pop_model_flags(kwargs))
        return ctx.invoke(func, *args, settings=settings, **kwargs)

    return wrapper


def voice_option(required: bool = False, help: str = "A voice from the library ('qtts clone list').") -> Any:  # noqa: A002
    return click.option("--voice-id", required=required, default=None, help=help)


def speaker_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--speaker (CustomVoice models) and --instruct (CustomVoice 1.7B, VoiceDesign)."""
    decorators = [
        click.option("--speaker", default=None,
                     help="A CustomVoice model's preset speaker (see 'qtts speakers'), instead of a cloned voice."),
        click.option("--instruct", default=None,
                     help="CustomVoice 1.7B: how to speak ('cheerful, a bit faster'); VoiceDesign: the voice, "
                     "described ('a calm, low-pitched older man, slightly hoarse')."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def language_option(help: str = "Language name, or Auto (default: QTTS_LANGUAGE, else Auto).") -> Any:  # noqa: A002
    return click.option("--language", default=None, help=help)


def format_option(default: str | None = "wav", help: str = "Audio format: wav flac mp3 ogg opus pcm.") -> Any:  # noqa: A002
    return click.option("--format", "fmt", default=default, show_default=default is not None, help=help)


def expressive_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--speed, --no-markup and --read-numbers: how the text is read (speak, batch)."""
    low, high = SPEED_RANGE
    decorators = [
        click.option("--speed", type=FiniteFloat(min=low, max=high), default=None,
                     help=f"Speaking rate, pitch unchanged ({low:g}-{high:g}; default 1)."),
        click.option("--no-markup", is_flag=True,
                     help="Read [pause:500ms], <break time=.../>, [speaker: ...], [style: ...] and [voice: ...] "
                     "as text instead of obeying them."),
        click.option("--read-numbers", is_flag=True,
                     help="Rewrite digits, decimals, ordinals, years, times, currency and percentages as words "
                     "in the text's language before speaking (default: the model reads them)."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def expressive_values(speed: float | None, no_markup: bool, read_numbers: bool) -> dict[str, Any]:
    """The request fields the expressive flags give (None where a flag was not given)."""
    return {"speed": speed, "markup": False if no_markup else None, "read_numbers": True if read_numbers else None}


def seed_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--seed", type=click.IntRange(0, MAX_SEED), default=None,
                        help="Random seed for reproducible output.")(func)


def text_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The text to speak, the same way in every command: TEXT, --text, --text-file, or stdin."""
    decorators = [
        click.argument("text_arg", metavar="[TEXT]", required=False),
        click.option("--text", help="Text to speak (or TEXT, --text-file, or stdin)."),
        click.option("--text-file", type=click.Path(dir_okay=False, path_type=Path),
                     help="Read the text from a UTF-8 file ('-' for stdin)."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def read_text(text_arg: str | None, text: str | None, text_file: Path | None, limit: int) -> str:
    """The text given by ``text_options`` (stdin when none is given and stdin is not a terminal).
    Files and stdin are read up to ``limit`` characters and no further: an endless source
    (``/dev/zero``, a growing file, a pipe that never closes) is refused without filling memory."""
    given = [v for v in (text_arg, text, text_file) if v is not None]
    if len(given) > 1:
        raise BadInput("give the text once", hint="use one of TEXT, --text or --text-file")
    if text_file is not None and str(text_file) != "-":
        from qtts.files import check_input_file

        check_input_file(text_file, "text file", allow_fifo=True)
        try:
            with open(text_file, "rb") as stream:
                return _read_bounded(stream, limit, f"text file {text_file}")
        except OSError as exc:
            raise BadInput(f"text file {text_file} cannot be read: {exc.strerror}", hint="check the path") from exc
    if given and text_file is None:
        return str(given[0])
    if text_file is not None or not sys.stdin.isatty():
        return _read_bounded(sys.stdin.buffer, limit, "the text on stdin")
    raise BadInput("no text given", hint="pass TEXT, --text, --text-file, or pipe text on stdin")


def _read_bounded(stream: Any, limit: int, what: str) -> str:
    from qtts.errors import TooLarge

    most = 4 * (limit + 1)  # UTF-8 takes at most 4 bytes a character
    data = bytearray()
    while len(data) <= most:
        piece = stream.read(min(1 << 16, most + 1 - len(data)))
        if not piece:
            break
        data += piece
    if len(data) > most:
        raise TooLarge(f"{what} is longer than the limit of {limit} characters",
                       hint="split it into several requests, or raise QTTS_MAX_TEXT_CHARS")
    text = _utf8(bytes(data), what)
    if len(text) > limit:
        raise TooLarge(f"{what} has {len(text)} characters; the limit is {limit}",
                       hint="split it into several requests, or raise QTTS_MAX_TEXT_CHARS")
    return text


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{what} is not UTF-8 text (byte {exc.start})", hint="convert it to UTF-8") from exc
