"""Background jobs: scans, checks and snapshots run in a thread pool, progress in the DB.

Each job is a row of ``pg_jobs`` (queued -> running -> done | failed) whose stage,
``done`` and ``total`` the library's progress callbacks update (at most a few times
a second). Results go to the :class:`~poisonguard.service.files.FileStore`; every
finished job appends a ledger entry. The work itself is the library's:
:func:`poisonguard.scan.scan_dataset`, :func:`poisonguard.validate.check`,
:func:`poisonguard.provenance.snapshot`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from poisonguard.errors import PoisonguardError
from poisonguard.service.schema import jobs

if TYPE_CHECKING:
    from poisonguard.service.core import Service

__all__ = ["JOB_KINDS", "JobRunner", "new_job"]

JOB_KINDS = ("scan", "check", "snapshot")


class _DbProgress:
    """The library's Progress protocol, written to the job's row (throttled)."""

    def __init__(self, service: Service, job_id: str, every: float = 0.25) -> None:
        self.service, self.job_id, self.every, self._last = service, job_id, every, 0.0

    def update(self, stage: str, *, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            return
        self._last = now
        with self.service.store.write() as conn:
            conn.execute(jobs.update().where(jobs.c.id == self.job_id).values(
                stage=stage[:200], done=int(done), total=max(int(total), 0)))


def new_job(service: Service, kind: str, dataset_id: str, params: dict[str, Any],
            user_id: int) -> str:
    """Insert a queued job and hand it to the runner; return its id."""
    job_id = secrets.token_hex(8)
    with service.store.write() as conn:
        conn.execute(jobs.insert().values(
            id=job_id, kind=kind, dataset_id=dataset_id, params=json.dumps(params),
            status="queued", stage="queued", done=0, total=0, created_by=user_id,
            created_at=time.time()))
    service.runner.submit(job_id)
    return job_id


class JobRunner:
    """Runs jobs on ``workers`` threads; ``work[kind](service, job, progress)`` does one."""

    def __init__(self, service: Service, workers: int,
                 work: dict[str, Callable[..., dict[str, Any]]]) -> None:
        self.service, self.work = service, work
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pg-job")

    def submit(self, job_id: str) -> None:
        self.pool.submit(self._run, job_id)

    def _set(self, job_id: str, **values: Any) -> None:
        with self.service.store.write() as conn:
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(**values))

    def _run(self, job_id: str) -> None:
        with self.service.store.read() as conn:
            job = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
        if job is None:
            return
        self._set(job_id, status="running", stage="loading data")
        try:
            summary = self.work[job["kind"]](self.service, dict(job),
                                             _DbProgress(self.service, job_id))
        except PoisonguardError as exc:
            self._fail(job, str(exc))
        except Exception as exc:  # a bug: the job fails visibly, the server stays up
            self._fail(job, f"internal error ({type(exc).__name__})")
            raise
        else:
            self._set(job_id, status="done", stage="done", done=1, total=1,
                      summary=json.dumps(summary), finished_at=time.time())

    def _fail(self, job: Any, message: str) -> None:
        self._set(job["id"], status="failed", stage="failed", error=message[:2000],
                  finished_at=time.time())
        self.service.store.ledger.append(
            f"service-{job['kind']}-failed", actor=self.service.user_name(job["created_by"]),
            inputs=[{"dataset": job["dataset_id"]}], details={"job": job["id"],
                                                              "error": message[:500]})

    def recover(self) -> int:
        """Jobs left queued or running by a stopped server fail as interrupted."""
        with self.service.store.write() as conn:
            res = conn.execute(jobs.update().where(jobs.c.status.in_(("queued", "running")))
                               .values(status="failed", stage="failed",
                                       error="interrupted: the server stopped",
                                       finished_at=time.time()))
        return int(res.rowcount)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
