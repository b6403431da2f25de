"""Job records: our own table, separate from the queue's messages.

A queue message carries only a job id; everything else lives here.  ``SqlJobStore`` keeps
the table in SQLite (one file in the qtts home; the embedded default) or in PostgreSQL
(the shared database when distributed); ``RedisJobStore`` keeps it in Redis when Redis is
the only shared service.  Every state change is one atomic statement, so that a message
delivered twice (at-least-once delivery) is claimed once, and only the worker holding a
job's lease can finish it.

Fencing: a claim increments ``attempts``, and the attempt number is the claim's token.
Heartbeats and ``finish`` apply only while both the worker name and the attempt number
still match, so a worker that lost its lease (and was replaced) can neither renew it nor
finish the job or publish its artifact.  A job is claimed at most ``max_attempts`` times;
one whose lease expires on its last attempt (its worker died each time, e.g. killed by
what the job does) becomes ``failed`` with the category ``worker_died``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from qtts.errors import BadInput, NotFound, WorkerDied
from qtts.jobs.job import CANCELLED, FAILED, FINAL, QUEUED, RUNNING, Job, dumps

_COLUMNS = ("id", "status", "request", "created_at", "updated_at", "chunks_done", "chunks_total", "attempts",
            "worker", "lease_until", "cancel_requested", "error_category", "error_message", "error_hint",
            "artifact", "summary", "started_at", "finished_at")


class JobStore(Protocol):
    def create(self, job_id: str, request: dict[str, Any]) -> Job: ...
    def get(self, job_id: str) -> Job: ...
    def list(self, limit: int = 20, offset: int = 0, status: str | None = None) -> tuple[list[Job], int]: ...
    def claim(self, job_id: str, worker: str, lease_s: float, max_attempts: int) -> Job | None: ...
    def heartbeat(self, job_id: str, worker: str, attempt: int, lease_s: float, done: int,
                  total: int) -> Job | None: ...
    def finish(self, job_id: str, worker: str, attempt: int, status: str, **values: Any) -> bool: ...
    def request_cancel(self, job_id: str) -> Job: ...
    def ids_with_status(self, status: str) -> list[str]: ...
    def requeue_expired(self, max_attempts: int) -> list[str]: ...
    def prune(self, finished_before: float) -> list[Job]: ...


def worker_died(attempts: int) -> dict[str, str]:
    """The error fields of a job whose worker died on its last attempt."""
    error = WorkerDied(f"the worker running this job stopped on each of its {attempts} attempts",
                       hint="the job may crash its worker (e.g. run out of memory): try shorter text, "
                       "or raise QTTS_JOB_MAX_ATTEMPTS")
    return {"error_category": error.category, "error_message": error.message, "error_hint": error.hint}


def _not_found(job_id: str) -> NotFound:
    return NotFound(f"job {job_id!r} does not exist", hint="list jobs with 'qtts queue list' or GET /v1/jobs")


def _row_to_job(row: dict[str, Any]) -> Job:
    values = dict(row)
    values["request"] = json.loads(values["request"]) if isinstance(values["request"], str) else values["request"]
    if isinstance(values["summary"], (str, type(None))):
        values["summary"] = json.loads(values["summary"] or "{}")
    values["cancel_requested"] = bool(int(values["cancel_requested"]))
    for key in ("chunks_done", "chunks_total", "attempts"):
        values[key] = int(values[key])
    for key in ("created_at", "updated_at", "lease_until", "started_at", "finished_at"):
        values[key] = float(values[key])
    return Job(**values)


# -- SQL (SQLite, PostgreSQL) ----------------------------------------------------------------

def _migration_1(float_type: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS jobs (
            id TEXT PRIMARY KEY, status TEXT NOT NULL, request TEXT NOT NULL,
            created_at {float_type} NOT NULL, updated_at {float_type} NOT NULL,
            chunks_done INTEGER NOT NULL DEFAULT 0, chunks_total INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0, worker TEXT NOT NULL DEFAULT '',
            lease_until {float_type} NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,
            error_category TEXT NOT NULL DEFAULT '', error_message TEXT NOT NULL DEFAULT '',
            error_hint TEXT NOT NULL DEFAULT '', artifact TEXT NOT NULL DEFAULT '',
            summary TEXT NOT NULL DEFAULT '{{}}', started_at {float_type} NOT NULL DEFAULT 0,
            finished_at {float_type} NOT NULL DEFAULT 0)""",
        "CREATE INDEX IF NOT EXISTS jobs_status_created ON jobs (status, created_at)",
    ]


# Ordered schema migrations; each entry's statements run once, recorded in schema_migrations.
MIGRATIONS: list[Callable[[str], list[str]]] = [_migration_1]


class SqlJobStore:
    """Jobs in SQLite (``path``) or PostgreSQL (``dsn``)."""

    def __init__(self, path: Path | None = None, dsn: str | None = None) -> None:
        if (path is None) == (dsn is None):
            raise ValueError("give exactly one of path or dsn")
        self.path = path
        self.dsn = dsn
        self._local = threading.local()
        self._float = "DOUBLE PRECISION" if dsn else "REAL"
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    # connection handling: one connection per thread
    def _connect(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if self.dsn:
                import psycopg

                connection = psycopg.connect(self.dsn, autocommit=True)
            else:
                connection = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA busy_timeout=30000")
            self._local.connection = connection
        return connection

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        cursor = self._connect().cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def _sql(self, query: str) -> str:
        return query.replace("?", "%s") if self.dsn else query

    def _execute(self, query: str, params: tuple = ()) -> int:
        with self._cursor() as cursor:
            cursor.execute(self._sql(query), params)
            return cursor.rowcount

    def _fetch(self, query: str, params: tuple = ()) -> list[dict[str, Any]]:
        with self._cursor() as cursor:
            cursor.execute(self._sql(query), params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def _migrate(self) -> None:
        self._execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                      f"(version INTEGER PRIMARY KEY, applied_at {self._float})")
        applied = {row["version"] for row in self._fetch("SELECT version FROM schema_migrations")}
        for version, migration in enumerate(MIGRATIONS, start=1):
            if version in applied:
                continue
            for statement in migration(self._float):
                self._execute(statement)
            self._execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                          (version, time.time()))

    # operations
    def create(self, job_id: str, request: dict[str, Any]) -> Job:
        now = time.time()
        self._execute("INSERT INTO jobs (id, status, request, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                      (job_id, QUEUED, dumps(request), now, now))
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        rows = self._fetch(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise _not_found(job_id)
        return _row_to_job(rows[0])

    def list(self, limit: int = 20, offset: int = 0, status: str | None = None) -> tuple[list[Job], int]:
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        total = self._fetch(f"SELECT COUNT(*) AS n FROM jobs {where}", params)[0]["n"]
        rows = self._fetch(f"SELECT {', '.join(_COLUMNS)} FROM jobs {where} ORDER BY created_at DESC, id "
                           f"LIMIT ? OFFSET ?", (*params, limit, offset))
        return [_row_to_job(r) for r in rows], int(total)

    def claim(self, job_id: str, worker: str, lease_s: float, max_attempts: int) -> Job | None:
        now = time.time()
        claimed = self._execute(
            "UPDATE jobs SET status = ?, worker = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?, "
            "started_at = CASE WHEN started_at = 0 THEN ? ELSE started_at END "
            "WHERE id = ? AND attempts < ? "
            "AND ((status = ? AND cancel_requested = 0) OR (status = ? AND lease_until < ?))",
            (RUNNING, worker, now + lease_s, now, now, job_id, max_attempts, QUEUED, RUNNING, now))
        return self.get(job_id) if claimed == 1 else None

    def heartbeat(self, job_id: str, worker: str, attempt: int, lease_s: float, done: int, total: int) -> Job | None:
        now = time.time()
        updated = self._execute(
            "UPDATE jobs SET lease_until = ?, chunks_done = ?, chunks_total = ?, updated_at = ? "
            "WHERE id = ? AND status = ? AND worker = ? AND attempts = ?",
            (now + lease_s, done, total, now, job_id, RUNNING, worker, attempt))
        return self.get(job_id) if updated == 1 else None

    def finish(self, job_id: str, worker: str, attempt: int, status: str, **values: Any) -> bool:
        now = time.time()
        values = {**values, "status": status, "updated_at": now, "finished_at": now, "lease_until": 0}
        if "summary" in values:
            values["summary"] = dumps(values["summary"])
        assignments = ", ".join(f"{name} = ?" for name in values)
        updated = self._execute(f"UPDATE jobs SET {assignments} "
                                "WHERE id = ? AND status = ? AND worker = ? AND attempts = ?",
                                (*values.values(), job_id, RUNNING, worker, attempt))
        return updated == 1

    def request_cancel(self, job_id: str) -> Job:
        now = time.time()
        job = self.get(job_id)
        if job.status in FINAL:
            raise BadInput(f"job {job_id} is already {job.status}", hint="only queued or running jobs can be cancelled")
        self._execute("UPDATE jobs SET status = ?, finished_at = ?, updated_at = ? WHERE id = ? AND status = ?",
                      (CANCELLED, now, now, job_id, QUEUED))
        self._execute("UPDATE jobs SET cancel_requested = 1, updated_at = ? WHERE id = ? AND status = ?",
                      (now, job_id, RUNNING))
        return self.get(job_id)

    def ids_with_status(self, status: str) -> list[str]:
        return [r["id"] for r in self._fetch("SELECT id FROM jobs WHERE status = ? ORDER BY created_at", (status,))]

    def requeue_expired(self, max_attempts: int) -> list[str]:
        """Running jobs whose worker stopped renewing its lease (killed): back to queued, or
        failed (worker_died) after their last attempt.  Each update re-checks the lease."""
        now = time.time()
        expired = self._fetch("SELECT id, attempts FROM jobs WHERE status = ? AND lease_until < ?", (RUNNING, now))
        requeued = []
        for row in expired:
            if int(row["attempts"]) >= max_attempts:
                error = worker_died(int(row["attempts"]))
                self._execute("UPDATE jobs SET status = ?, worker = '', finished_at = ?, updated_at = ?, "
                              "error_category = ?, error_message = ?, error_hint = ? "
                              "WHERE id = ? AND status = ? AND lease_until < ?",
                              (FAILED, now, now, error["error_category"], error["error_message"], error["error_hint"],
                               row["id"], RUNNING, now))
            elif self._execute("UPDATE jobs SET status = CASE WHEN cancel_requested = 1 THEN ? ELSE ? END, "
                               "worker = '', "
                               "updated_at = ? WHERE id = ? AND status = ? AND lease_until < ?",
                               (CANCELLED, QUEUED, now, row["id"], RUNNING, now)) == 1:
                requeued.append(row["id"])
        return requeued

    def prune(self, finished_before: float) -> list[Job]:
        """Delete finished jobs that finished before ``finished_before``; return them (the
        caller deletes their artifacts)."""
        rows = self._fetch(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE status IN (?, ?, ?) AND finished_at < ?",
                           (*FINAL, finished_before))
        jobs = [_row_to_job(r) for r in rows]
        for job in jobs:
            self._execute("DELETE FROM jobs WHERE id = ? AND status IN (?, ?, ?)", (job.id, *FINAL))
        return jobs
