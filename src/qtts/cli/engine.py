"""``qtts engine``: the resident engine that keeps models loaded between CLI calls."""

from __future__ import annotations

import click

from qtts.cli.options import info, model_options, print_json, with_settings
from qtts.settings import Settings


@click.group()
def engine() -> None:
    """Start, inspect and stop the resident engine.

    \b
    'qtts speak', 'clone create' and 'batch' start it on demand and send their work to it,
    so only the first call waits for the model to load. It serves this user and QTTS_HOME
    over a private Unix socket (no TCP port), keeps its models in memory (~4.5 GB for 1.7B
    int8), and exits after QTTS_ENGINE_IDLE_S (600) seconds without a call.
    --no-engine or QTTS_ENGINE=off runs each command in its own process instead.
    """


@engine.command("start")
@model_options
@with_settings
def start(settings: Settings) -> None:
    """Start the engine now (and load --model-id), or check that it runs with these settings."""
    from qtts.resident import launch

    running = launch.start(settings, say=info)
    status = running.status
    info(f"qtts engine {'started' if running.started_now else 'running'} (pid {status['pid']}, {status['socket']})")


@engine.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON on stdout.")
@with_settings
def status(settings: Settings, as_json: bool) -> None:
    """Whether the engine runs: its models, memory, idle time and pid (exit 1 if none)."""
    from qtts.resident import launch

    running = launch.find(settings)
    if running is None:
        if as_json:
            print_json({"running": False})
        info("no qtts engine runs for this home; the next 'qtts speak' starts one")
        raise SystemExit(1)
    state = running.status
    if as_json:
        print_json({"running": True, **state})
        return
    models = ", ".join(f"{m['model_id']} (loaded in {m['load_seconds']:.1f} s)" for m in state["models"]) or "none yet"
    loading = f"; loading {', '.join(state['loading'])}" if state.get("loading") else ""
    click.echo(
        f"pid {state['pid']}, up {state['uptime_s']:.0f} s, idle {state['idle_s']:.0f} s of "
        f"{state['idle_exit_s']:.0f}, {state['active']} call(s) in flight"
    )
    click.echo(f"memory {state['rss_bytes'] / 2**30:.2f} GiB resident; models: {models}{loading}")
    click.echo(f"socket {state['socket']}; log {state['log']}")


@engine.command("stop")
@with_settings
def stop(settings: Settings) -> None:
    """Stop the engine (its calls in flight get a few seconds to finish)."""
    from qtts.resident import launch

    stopped = launch.stop(settings)
    info(f"stopped the qtts engine (pid {stopped['pid']})" if stopped else "no qtts engine was running")


@engine.command("run", hidden=True)
@with_settings
def run(settings: Settings) -> None:
    """The engine process itself (started by the commands above; runs in the foreground)."""
    from qtts.resident.process import run_engine

    run_engine(settings)
