"""Job records in Redis, for a distributed setup whose only shared service is Redis.

Same contract as ``SqlJobStore``: each state change is atomic (a Lua script that re-checks
status, lease and fencing token), so a message delivered twice is claimed once and only the
lease holder of the current attempt can renew or finish a job.
"""

from __future__ import annotations

import time
from typing import Any

from qtts.errors import BadInput
from qtts.jobs.job import CANCELLED, FINAL, QUEUED, RUNNING, Job, dumps
from qtts.jobs.store import _not_found, _row_to_job, worker_died

_CLAIM = """
local key = KEYS[1]
local status = redis.call('HGET', key, 'status')
if not status then return 0 end
local now = tonumber(ARGV[3])
local lease = tonumber(redis.call('HGET', key, 'lease_until'))
local cancel = redis.call('HGET', key, 'cancel_requested')
if tonumber(redis.call('HGET', key, 'attempts')) >= tonumber(ARGV[4]) then return 0 end
if (status == 'queued' and cancel == '0') or (status == 'running' and lease < now) then
  local started = redis.call('HGET', key, 'started_at')
  if started == '0' or started == '0.0' then redis.call('HSET', key, 'started_at', ARGV[3]) end
  redis.call('HSET', key, 'status', 'running', 'worker', ARGV[1], 'lease_until', ARGV[2], 'updated_at', ARGV[3])
  redis.call('HINCRBY', key, 'attempts', 1)
  return 1
end
return 0
"""

_IF_HOLDER = """
local key = KEYS[1]
if redis.call('HGET', key, 'status') ~= 'running' or redis.call('HGET', key, 'worker') ~= ARGV[1]
   or redis.call('HGET', key, 'attempts') ~= ARGV[2] then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
return 1
"""

# ARGV: now, max_attempts, then the worker_died error fields.  Returns 1 requeued, 2 failed.
_REQUEUE = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
if redis.call('HGET', key, 'status') ~= 'running' or tonumber(redis.call('HGET', key, 'lease_until')) >= now then
  return 0
end
if tonumber(redis.call('HGET', key, 'attempts')) >= tonumber(ARGV[2]) then
  redis.call('HSET', key, 'status', 'failed', 'worker', '', 'finished_at', ARGV[1], 'updated_at', ARGV[1],
             'error_category', ARGV[3], 'error_message', ARGV[4], 'error_hint', ARGV[5])
  return 2
end
local target = 'queued'
if redis.call('HGET', key, 'cancel_requested') == '1' then target = 'cancelled' end
redis.call('HSET', key, 'status', target, 'worker', '', 'updated_at', ARGV[1])
return 1
"""

_IF_STATUS = """
local key = KEYS[1]
if redis.call('HGET', key, 'status') ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
return 1
"""


class RedisJobStore:
    def __init__(self, url: str, prefix: str = "qtts") -> None:
        import redis

        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.prefix = prefix
        self._claim = self.client.register_script(_CLAIM)
        self._if_holder = self.client.register_script(_IF_HOLDER)
        self._if_status = self.client.register_script(_IF_STATUS)
        self._requeue = self.client.register_script(_REQUEUE)

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}:jobs"

    def create(self, job_id: str, request: dict[str, Any]) -> Job:
        now = time.time()
        values = {"id": job_id, "status": QUEUED, "request": dumps(request), "created_at": now, "updated_at": now,
                  "chunks_done": 0, "chunks_total": 0, "attempts": 0, "worker": "", "lease_until": 0,
                  "cancel_requested": 0, "error_category": "", "error_message": "", "error_hint": "",
                  "artifact": "", "summary": "{}", "started_at": 0, "finished_at": 0}
        pipe = self.client.pipeline()
        pipe.hset(self._key(job_id), mapping=values)
        pipe.zadd(self._index, {job_id: now})
        pipe.execute()
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        values = self.client.hgetall(self._key(job_id))
        if not values:
            raise _not_found(job_id)
        return _row_to_job(values)

    def list(self, limit: int = 20, offset: int = 0, status: str | None = None) -> tuple[list[Job], int]:
        ids = self.client.zrevrange(self._index, 0, -1)
        jobs = [self.get(i) for i in ids]
        if status:
            jobs = [j for j in jobs if j.status == status]
        return jobs[offset:offset + limit], len(jobs)

    def claim(self, job_id: str, worker: str, lease_s: float, max_attempts: int) -> Job | None:
        now = time.time()
        claimed = self._claim(keys=[self._key(job_id)], args=[worker, now + lease_s, now, max_attempts])
        return self.get(job_id) if claimed else None

    def heartbeat(self, job_id: str, worker: str, attempt: int, lease_s: float, done: int, total: int) -> Job | None:
        now = time.time()
        fields = ["lease_until", now + lease_s, "chunks_done", done, "chunks_total", total, "updated_at", now]
        ok = self._if_holder(keys=[self._key(job_id)], args=[worker, attempt, *fields])
        return self.get(job_id) if ok else None

    def finish(self, job_id: str, worker: str, attempt: int, status: str, **values: Any) -> bool:
        now = time.time()
        values = {**values, "status": status, "updated_at": now, "finished_at": now, "lease_until": 0}
        if "summary" in values:
            values["summary"] = dumps(values["summary"])
        args: list[Any] = [worker, attempt]
        for name, value in values.items():
            args += [name, value]
        return bool(self._if_holder(keys=[self._key(job_id)], args=args))

    def request_cancel(self, job_id: str) -> Job:
        now = time.time()
        job = self.get(job_id)
        if job.status in FINAL:
            raise BadInput(f"job {job_id} is already {job.status}", hint="only queued or running jobs can be cancelled")
        key = self._key(job_id)
        if not self._if_status(keys=[key], args=[QUEUED, "status", CANCELLED, "finished_at", now, "updated_at", now]):
            self._if_status(keys=[key], args=[RUNNING, "cancel_requested", 1, "updated_at", now])
        return self.get(job_id)

    def ids_with_status(self, status: str) -> list[str]:
        return [j.id for j in reversed(self.list(limit=10**9, status=status)[0])]

    def requeue_expired(self, max_attempts: int) -> list[str]:
        now = time.time()
        requeued = []
        for job in self.list(limit=10**9, status=RUNNING)[0]:
            if job.lease_until < now:
                error = worker_died(job.attempts)
                outcome = self._requeue(keys=[self._key(job.id)], args=[now, max_attempts, error["error_category"],
                                                                        error["error_message"], error["error_hint"]])
                if outcome == 1:
                    requeued.append(job.id)
        return requeued

    def prune(self, finished_before: float) -> list[Job]:
        """Delete finished jobs (their hash and index entry) that finished before ``finished_before``."""
        jobs = [j for j in self.list(limit=10**9)[0] if j.status in FINAL and j.finished_at < finished_before]
        for job in jobs:
            pipe = self.client.pipeline()
            pipe.delete(self._key(job.id))
            pipe.zrem(self._index, job.id)
            pipe.execute()
        return jobs
