"""The job queue: Huey carries job ids, our store keeps the jobs.

``QTTS_QUEUE_URL`` picks the backend: empty -> ``SqliteHuey`` and a SQLite job table in the
qtts home (embedded, no server); ``redis://…`` -> ``RedisHuey`` with jobs in Redis;
``postgresql://…`` -> ``PostgresHuey`` with jobs in a PostgreSQL table.  The same task code
runs on all three.

Delivery is at-least-once.  Huey removes a message when a worker dequeues it, so a worker
killed mid-job would lose it; ``recover()`` (run by every worker at start and periodically)
puts back jobs whose lease expired and re-enqueues queued jobs that have no message.  A
job delivered twice is claimed once (``JobStore.claim``), so duplicates are harmless.

Messages are JSON carrying one job id (``JobIdSerializer``), never pickles: whoever can
write to the queue's storage could otherwise run code on every worker.  Finished jobs are
deleted with their audio ``job_retention`` after they finish (``prune``), by every worker
once an hour and by ``qtts queue prune``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qtts.jobs.job import QUEUED, Job, new_job_id
from qtts.jobs.store import JobStore, SqlJobStore
from qtts.request import SpeakRequest, request_to_dict
from qtts.settings import Settings

log = logging.getLogger(__name__)

TASK_NAME = "qtts.synthesize_job"
MESSAGE_NAME = f"{__name__}.{TASK_NAME}"  # how Huey's registry names the task in a message
JOB_ID = re.compile(r"^job_[0-9a-f]{20}$")
PRUNE_EVERY_S = 3600.0


def _serializer() -> Any:
    from huey.registry import Message
    from huey.serializer import Serializer

    class JobIdSerializer(Serializer):
        """Huey messages as ``{"id", "name", "job"}`` JSON; anything else is refused both ways."""

        def _serialize(self, data: Any) -> bytes:
            if not (isinstance(data, Message) and data.name == MESSAGE_NAME and len(data.args or ()) == 1
                    and not data.kwargs and isinstance(data.args[0], str) and JOB_ID.fullmatch(data.args[0])):
                raise ValueError(f"qtts's queue carries only job ids, not {type(data).__name__}")
            return json.dumps({"id": data.id, "name": data.name, "job": data.args[0]}).encode()

        def _deserialize(self, data: bytes) -> Any:
            try:
                value = json.loads(bytes(data).decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise ValueError("refused a queue message that is not qtts's JSON (a pickle?)") from exc
            if not (isinstance(value, dict) and set(value) == {"id", "name", "job"} and value["name"] == MESSAGE_NAME
                    and isinstance(value["id"], str) and isinstance(value["job"],
                                                                    str) and JOB_ID.fullmatch(value["job"])):
                raise ValueError("refused a queue message that is not a qtts job id")
            return Message(value["id"], MESSAGE_NAME, None, 0, 0, None, (value["job"],), {})

    return JobIdSerializer()


def make_store(settings: Settings) -> JobStore:
    url = settings.queue_url
    if url.startswith(("redis://", "rediss://", "unix://")):
        from qtts.jobs.redis_store import RedisJobStore

        return RedisJobStore(url)
    if url.startswith(("postgresql://", "postgres://")):
        return SqlJobStore(dsn=url)
    return SqlJobStore(path=settings.home / "jobs.db")


def make_huey(settings: Settings) -> Any:
    from huey import PostgresHuey, RedisHuey, SqliteHuey

    url = settings.queue_url
    # results=False: audio goes to files and status to our table, never to Huey's result store.
    serializer = _serializer()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("qtts", url=url, results=False, serializer=serializer)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresHuey("qtts", dsn=url, results=False, serializer=serializer)
    settings.home.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("qtts", filename=str(settings.home / "queue.db"), results=False, serializer=serializer)


class JobQueue:
    def __init__(self, settings: Settings, store: JobStore | None = None, huey: Any = None) -> None:
        self.settings = settings
        self.store = store or make_store(settings)
        self.huey = huey or make_huey(settings)
        self._handler: Callable[[str], None] | None = None
        self._task = self.huey.task(name=TASK_NAME)(self._run)

    @property
    def artifacts_dir(self) -> Path:
        return self.settings.artifacts_path

    def _run(self, job_id: str) -> None:
        if self._handler is None:
            raise RuntimeError("no worker handler registered on this process")
        self._handler(job_id)

    def submit(self, request: SpeakRequest) -> Job:
        job = self.store.create(new_job_id(), request_to_dict(request))
        self._task(job.id)
        return job

    def pending_job_ids(self) -> set[str]:
        ids = set()
        for task in self.huey.pending():
            if getattr(task, "name", "") == TASK_NAME and task.args:
                ids.add(task.args[0])
        return ids

    def recover(self) -> list[str]:
        """Re-enqueue jobs that a dead worker held, and queued jobs without a message."""
        requeued = self.store.requeue_expired(self.settings.job_max_attempts)
        pending = self.pending_job_ids()
        missing = [i for i in self.store.ids_with_status(QUEUED) if i not in pending]
        for job_id in missing:
            self._task(job_id)
        if requeued or missing:
            log.warning("recovered jobs: %d from expired leases, %d without a queue message", len(requeued),
                        len(missing))
        return missing

    def prune(self, older_than_s: float | None = None) -> list[str]:
        """Delete finished jobs older than ``older_than_s`` (default: the retention setting)
        and their audio; return their ids.  A retention of 0 keeps everything."""
        keep_s = self.settings.job_retention_s if older_than_s is None else older_than_s
        if keep_s <= 0 and older_than_s is None:
            return []
        removed = self.store.prune(time.time() - keep_s)
        for job in removed:
            for path in self.artifacts_dir.glob(f"{job.id}.*"):
                path.unlink(missing_ok=True)
        if removed:
            log.info("pruned %d finished jobs", len(removed))
        return [job.id for job in removed]

    def work(self, handler: Callable[[str], None], stop: threading.Event, poll_s: float = 0.2,
             recover_every_s: float = 5.0, slots: threading.Semaphore | None = None) -> None:
        """Run jobs until ``stop`` is set: our own loop around ``huey.dequeue``/``execute``
        (Huey's consumer installs signal handlers, which only work in the main thread).
        With ``slots``, a message is taken only when a slot is free (the handler's job
        releases it): a busy worker leaves queued jobs to the others."""
        self._handler = handler
        next_recovery = next_prune = 0.0
        while not stop.is_set():
            if slots is not None and not slots.acquire(timeout=poll_s):
                continue
            if time.monotonic() >= next_recovery:
                try:
                    self.recover()
                except Exception:  # the queue backend may be briefly unavailable; try again later
                    log.exception("job recovery failed")
                next_recovery = time.monotonic() + recover_every_s
            if time.monotonic() >= next_prune:
                try:
                    self.prune()
                except Exception:
                    log.exception("pruning finished jobs failed")
                next_prune = time.monotonic() + PRUNE_EVERY_S
            try:
                task = self.huey.dequeue()
            except Exception:
                log.exception("dequeue failed")
                task = None
                stop.wait(1.0)
            if task is None:
                if slots is not None:
                    slots.release()
                stop.wait(poll_s)
                continue
            try:
                self.huey.execute(task)
            except BaseException:
                if slots is not None:  # the handler never ran: its slot is still taken
                    slots.release()
                raise
