"""The worker loop: claim due jobs with a lease, run their handlers, retry with backoff.

Handlers own their transactions (they re-check state in the transaction that
acts). A handler signals a retry by raising RetryLater; any other exception is
logged and retried with backoff until `max_attempts`, then the job is dead and
visible via `warroom jobs dead` / the API. Periodic sweeps (escalations due,
breaches, heartbeats) run every few seconds and must be idempotent, because
several workers may run them.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select

from warroom.core import faults
from warroom.core.errors import Unavailable
from warroom.core.logging import get_logger
from warroom.jobs import queue
from warroom.jobs.models import Job, WorkerHeartbeat
from warroom.jobs.runtime import Runtime

log = get_logger("warroom.worker")

Handler = Callable[[Runtime, Job], None]
Sweep = Callable[[Runtime], None]


class RetryLater(Exception):
    """Raised by a handler: try again after `delay` seconds (None: backoff)."""

    def __init__(self, reason: str, *, delay: float | None = None, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay
        self.permanent = permanent


@dataclass(frozen=True)
class HandlerSpec:
    kind: str
    version: int
    handler: Handler
    backoff_base: float = 1.0
    backoff_cap: float = 60.0


class Registry:
    """Job kinds and periodic sweeps this process knows."""

    def __init__(self) -> None:
        self.handlers: dict[str, HandlerSpec] = {}
        self.sweeps: list[tuple[str, float, Sweep]] = []

    def handler(
        self,
        kind: str,
        fn: Handler,
        *,
        version: int = 1,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
    ) -> None:
        if kind in self.handlers:
            raise ValueError(f"job kind {kind!r} registered twice")
        self.handlers[kind] = HandlerSpec(kind, version, fn, backoff_base, backoff_cap)

    def sweep(self, name: str, every_seconds: float, fn: Sweep) -> None:
        self.sweeps.append((name, every_seconds, fn))


class Worker:
    def __init__(
        self, runtime: Runtime, registry: Registry, *, worker_id: str | None = None
    ) -> None:
        self.rt = runtime
        self.registry = registry
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by wake(): a job was just committed
        self._last_sweep: dict[str, float] = {}
        self._started = runtime.now()

    # -------------------------------------------------------------- loop
    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Cut the idle wait short (the embedded API calls this after a write)."""
        self._wake.set()

    def run_forever(self) -> None:
        poll = self.rt.settings.worker_poll_seconds
        log.info("worker_started", worker=self.worker_id, kinds=sorted(self.registry.handlers))
        while not self._stop.is_set():
            try:
                self.heartbeat()
                self.run_sweeps()
                worked = self.run_once()
            except Unavailable as exc:
                log.warning("worker_database_unavailable", error=exc.message)
                worked = 0
            except Exception:
                log.exception("worker_loop_error")
                worked = 0
            if not worked:
                self._wake.wait(poll)
                self._wake.clear()
        log.info("worker_stopped", worker=self.worker_id)

    def heartbeat(self) -> None:
        now = self.rt.now()
        with self.rt.db.transaction() as s:
            hb = s.get(WorkerHeartbeat, self.worker_id)
            if hb is None:
                s.add(
                    WorkerHeartbeat(
                        worker_id=self.worker_id,
                        host=socket.gethostname(),
                        pid=os.getpid(),
                        started_at=self._started,
                        last_seen=now,
                    )
                )
            else:
                hb.last_seen = now
            # forget workers silent for a day, so the table does not grow forever
            s.execute(
                delete(WorkerHeartbeat).where(WorkerHeartbeat.last_seen < now - timedelta(days=1))
            )

    def run_sweeps(self) -> None:
        mono = time.monotonic()
        for name, every, fn in self.registry.sweeps:
            if mono - self._last_sweep.get(name, -1e9) < every:
                continue
            self._last_sweep[name] = mono
            try:
                fn(self.rt)
            except Unavailable:
                raise
            except Exception:
                log.exception("sweep_failed", sweep=name)

    def run_once(self, *, limit: int = 10) -> int:
        """Claim and run one batch of due jobs; returns how many ran."""
        kinds = {k: spec.version for k, spec in self.registry.handlers.items()}
        if not kinds:
            return 0
        now = self.rt.now()
        lease = timedelta(seconds=self.rt.settings.job_lease_seconds)
        with self.rt.db.transaction() as s:
            jobs = queue.claim(
                s, worker_id=self.worker_id, kinds=kinds, now=now, lease=lease, limit=limit
            )
            s.expunge_all()
        for job in jobs:
            faults.hit("after_claim")
            self._run(job)
        return len(jobs)

    def drain(self, *, max_rounds: int = 100) -> int:
        """Run sweeps and due jobs until nothing is due (tests and `worker --once`)."""
        total = 0
        for _ in range(max_rounds):
            self.run_sweeps()
            ran = self.run_once()
            total += ran
            if not ran:
                break
        return total

    def _run(self, job: Job) -> None:
        spec = self.registry.handlers[job.kind]
        started = time.monotonic()
        try:
            spec.handler(self.rt, job)
        except RetryLater as exc:
            delay = (
                exc.delay
                if exc.delay is not None
                else queue.backoff(job.attempts, base=spec.backoff_base, cap=spec.backoff_cap)
            )
            self._retry(job, exc.reason, delay, dead=exc.permanent)
            return
        except Unavailable as exc:
            self._retry(job, exc.message, exc.retry_after)
            return
        except Exception as exc:
            log.exception("job_failed", job=job.id, kind=job.kind)
            delay = queue.backoff(job.attempts, base=spec.backoff_base, cap=spec.backoff_cap)
            self._retry(job, f"{type(exc).__name__}: {exc}", delay)
            return
        with self.rt.db.transaction() as s:
            queue.finish(s, job.id, worker_id=self.worker_id, now=self.rt.now())
        log.debug(
            "job_done", job=job.id, kind=job.kind, ms=int((time.monotonic() - started) * 1000)
        )

    def _retry(self, job: Job, reason: str, delay: float, *, dead: bool = False) -> None:
        with self.rt.db.transaction() as s:
            queue.retry(
                s,
                job,
                worker_id=self.worker_id,
                now=self.rt.now(),
                error=self.rt.redactor.redact(reason),
                delay=delay,
                dead=dead,
            )
        log.info("job_retry", job=job.id, kind=job.kind, delay=round(delay, 2), reason=reason[:200])


def latest_heartbeat(runtime: Runtime) -> WorkerHeartbeat | None:
    with runtime.db.read() as s:
        return s.scalars(
            select(WorkerHeartbeat).order_by(WorkerHeartbeat.last_seen.desc()).limit(1)
        ).first()
