"""Running one job: claim it, keep its lease alive, synthesize, store the artifact.

The worker translates between the job table and ``synthesis.synthesize_request``; it has
no synthesis logic of its own.  Each model it serves is loaded once (``engine.holder.Engines``);
a job names its model (or takes the default), and a job for a model this worker does not
serve fails with the model named.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import TYPE_CHECKING

from qtts.errors import Cancelled, QttsError
from qtts.files import write_atomic
from qtts.jobs.job import CANCELLED, FAILED, SUCCEEDED
from qtts.jobs.queue import JobQueue
from qtts.request import request_from_dict
from qtts.synthesis import synthesize_request, validate_request
from qtts.text import split_text
from qtts.voices import VoiceLibrary

if TYPE_CHECKING:
    from qtts.engine.holder import Engines

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, queue: JobQueue, engines: "Engines", name: str | None = None) -> None:
        self.queue = queue
        self.store = queue.store
        self.settings = queue.settings
        self.engines = engines
        self.library = VoiceLibrary(self.settings.voices_dir)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"

    def run(self, stop: threading.Event) -> None:
        """Run jobs until ``stop`` is set: up to ``max_batch`` at once (their chunks share the
        model's continuous batch), the current ones finished before returning."""
        from concurrent.futures import ThreadPoolExecutor

        places = max(1, self.settings.max_batch)
        slots = threading.Semaphore(places)
        with ThreadPoolExecutor(places, thread_name_prefix="qtts-job") as pool:
            def start(job_id: str) -> None:
                def run_and_free() -> None:
                    try:
                        self.process(job_id)
                    finally:
                        slots.release()

                pool.submit(run_and_free)

            self.queue.work(start, stop, slots=slots)

    def process(self, job_id: str) -> None:
        lease = self.settings.job_lease_s
        job = self.store.claim(job_id, self.name, lease, self.settings.job_max_attempts)
        if job is None:
            log.info("job %s: not claimable (done, cancelled, held by another worker, or out of attempts)", job_id)
            return
        attempt = job.attempts  # the fencing token: only this claim may renew or finish the job
        log.info("job %s: started (attempt %d)", job_id, attempt)
        heartbeat = _Heartbeat(self, job_id, attempt)

        def finish(status: str, **values: object) -> bool:
            return self.store.finish(job_id, self.name, attempt, status, **values)

        try:
            request = validate_request(self.settings, self.library, request_from_dict(job.request))
            heartbeat.progress(0, len(split_text(request.text, request.split_max_chars, language=request.language)))
            heartbeat.start()
            engine = self.engines.wait(self.engines.pick(request.model_id))
            data, summary = synthesize_request(engine, self.library, request, on_chunk=heartbeat.progress,
                                               should_cancel=heartbeat.cancel_requested)
            # One file per attempt, published by the fenced finish(): a worker that lost the
            # job cannot replace the audio of the one that holds it.
            path = self.queue.artifacts_dir / f"{job_id}.a{attempt}.{request.output_format}"
            write_atomic(path, data)
            # what subtitles need of each chunk (GET /v1/jobs/{id}/subtitles), and no more
            keep = ("text", "spoken", "start", "end")
            summary["chunks"] = [{k: c[k] for k in keep if k in c} for c in summary.get("chunks", [])]
            if finish(SUCCEEDED, artifact=str(path), summary=summary, chunks_done=heartbeat.total,
                      chunks_total=heartbeat.total):
                log.info("job %s: succeeded", job_id)
            else:
                path.unlink(missing_ok=True)
                log.warning("job %s: finished, but this worker lost it (attempt %d); its audio is dropped", job_id,
                            attempt)
        except Cancelled:
            finish(CANCELLED)
            log.info("job %s: cancelled", job_id)
        except QttsError as exc:
            finish(FAILED, error_category=exc.category, error_message=exc.message, error_hint=exc.hint)
            log.warning("job %s: failed: %s", job_id, exc.message)
        except Exception as exc:  # a bug: record it on the job instead of killing the worker
            log.exception("job %s: internal error", job_id)
            finish(FAILED, error_category="internal", error_message=f"{type(exc).__name__}: {exc}"[:500],
                   error_hint="this is a bug in qtts; the worker log has the traceback")
        finally:
            heartbeat.stop()


class _Heartbeat:
    """Renews the job's lease while it runs, and notices cancellation requests."""

    def __init__(self, worker: Worker, job_id: str, attempt: int) -> None:
        self.worker = worker
        self.job_id = job_id
        self.attempt = attempt
        self.done = 0
        self.total = 0
        self._cancel = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{job_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        self._beat()

    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def _beat(self) -> None:
        job = self.worker.store.heartbeat(self.job_id, self.worker.name, self.attempt,
                                          self.worker.settings.job_lease_s, self.done, self.total)
        if job is None or job.cancel_requested:
            self._cancel.set()  # cancelled, or the lease was lost to another worker: stop early

    def _loop(self) -> None:
        interval = max(0.2, self.worker.settings.job_lease_s / 4)
        while not self._stop.wait(interval):
            try:
                self._beat()
            except Exception:
                log.exception("heartbeat for job %s failed", self.job_id)
