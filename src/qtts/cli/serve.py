"""``qtts serve`` (HTTP API + embedded worker) and ``qtts worker`` (queue worker process)."""

from __future__ import annotations

import ipaddress
import signal
import threading

import click

from qtts.cli.options import info, model_options, with_settings
from qtts.errors import BadInput
from qtts.settings import Settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--host", default=None, help="Bind address (default 127.0.0.1). Env QTTS_HOST.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default 8000). Env QTTS_PORT.")
@click.option("--api-key", default=None, help="Require 'Authorization: Bearer KEY'. Env QTTS_API_KEY.")
@click.option("--queue-url", default=None,
              help="redis://… or postgresql://… to share jobs with 'qtts worker' processes.")
@click.option("--worker/--no-worker", "embedded_worker", default=None,
              help="Run queued jobs in this process (default on).")
@model_options(many=True)
@with_settings
def serve(settings: Settings, host: str | None, port: int | None, api_key: str | None, queue_url: str | None,
          embedded_worker: bool | None) -> None:
    """Serve the web page, the job API and the OpenAI-compatible speech endpoint."""
    import uvicorn

    from qtts.server.app import create_app

    given = {"host": host, "port": port, "api_key": api_key, "queue_url": queue_url, "embedded_worker": embedded_worker}
    settings = settings.replace(**{k: v for k, v in given.items() if v is not None})
    if not _is_loopback(settings.host) and not settings.api_key:
        raise BadInput(f"refusing to listen on {settings.host} without an API key",
                       hint="pass --api-key (or QTTS_API_KEY), or bind 127.0.0.1")
    info(f"qtts serving on http://{settings.host}:{settings.port} (models {', '.join(settings.served_model_ids)}, "
         f"queue {settings.queue_url or 'embedded SQLite'}, worker {'on' if settings.embedded_worker else 'off'})")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")


@click.command()
@click.option("--queue-url", default=None, help="The shared queue (default: the embedded SQLite queue in QTTS_HOME).")
@model_options(many=True)
@with_settings
def worker(settings: Settings, queue_url: str | None) -> None:
    """Run queued jobs (loads the model once; stops after the current job on SIGTERM/Ctrl-C)."""
    from qtts.engine.holder import Engines
    from qtts.jobs.queue import JobQueue
    from qtts.jobs.worker import Worker

    if queue_url is not None:
        settings = settings.replace(queue_url=queue_url)
    queue = JobQueue(settings)
    info(f"loading {settings.model_id} ...")
    engines = Engines(settings)
    engine = engines.wait()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    others = settings.served_model_ids[1:]
    info(f"worker ready (model load {engine.load_seconds:.1f} s"
         + (f"; also serves {', '.join(others)}, each loaded on first use" if others else "")
         + f"); waiting for jobs on {settings.queue_url or settings.home / 'queue.db'}")
    Worker(queue, engines).run(stop)
    info("worker stopped")
