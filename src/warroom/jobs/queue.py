"""Enqueue, claim, finish and retry jobs. Services enqueue; only the worker claims."""

from __future__ import annotations

import random
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warroom.jobs.models import Job, JobState


def enqueue(
    session: Session,
    *,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    run_at: datetime | None = None,
    dedup_key: str | None = None,
    incident_id: int | None = None,
    max_attempts: int = 10,
    priority: int = 100,
    version: int = 1,
) -> Job | None:
    """Add a job in the caller's transaction. With `dedup_key`, a second enqueue is a no-op.

    Returns the new job, or None when a job with the same dedup_key exists.
    """
    if dedup_key is not None:
        existing = session.scalar(select(Job.id).where(Job.dedup_key == dedup_key))
        if existing is not None:
            return None
    job = Job(
        kind=kind,
        version=version,
        payload=payload,
        state=JobState.PENDING,
        run_at=run_at or now,
        dedup_key=dedup_key,
        incident_id=incident_id,
        max_attempts=max_attempts,
        priority=priority,
        created_at=now,
        updated_at=now,
        attempts=0,
    )
    if dedup_key is None:
        session.add(job)
        session.flush()
        return job
    try:
        with session.begin_nested():
            session.add(job)
            session.flush()
    except IntegrityError:
        return None
    return job


def cancel(session: Session, *, incident_id: int, kinds: Collection[str], now: datetime) -> int:
    """Cancel pending jobs of these kinds for an incident (ack stops escalation)."""
    result = session.execute(
        update(Job)
        .where(
            Job.incident_id == incident_id,
            Job.kind.in_(list(kinds)),
            Job.state == JobState.PENDING,
        )
        .values(state=JobState.CANCELLED, updated_at=now, finished_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def claim(
    session: Session,
    *,
    worker_id: str,
    kinds: dict[str, int],
    now: datetime,
    lease: timedelta,
    limit: int = 10,
) -> list[Job]:
    """Lease up to `limit` due jobs of known kinds (and versions) to this worker.

    Expired leases (a worker that died) are claimable again. On PostgreSQL rows
    are locked with SKIP LOCKED so workers never wait on each other.
    """
    known = or_(*[and_(Job.kind == k, Job.version <= v) for k, v in kinds.items()])
    stmt = (
        select(Job)
        .where(
            known,
            or_(
                and_(Job.state == JobState.PENDING, Job.run_at <= now),
                and_(Job.state == JobState.RUNNING, Job.lease_until < now),
            ),
        )
        .order_by(Job.priority, Job.run_at, Job.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    jobs = list(session.scalars(stmt))
    for job in jobs:
        job.state = JobState.RUNNING
        job.lease_owner = worker_id
        job.lease_until = now + lease
        job.attempts += 1
        job.updated_at = now
    session.flush()
    return jobs


def backoff(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter in [50%, 100%] of the step, so jobs spread out."""
    r = rng or random
    step = min(cap, base * (2 ** max(0, attempt - 1)))
    return float(step * (0.5 + r.random() * 0.5))


def finish(session: Session, job_id: int, *, worker_id: str, now: datetime) -> bool:
    """Mark done if this worker still holds the lease; False means someone else took it."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == worker_id, Job.state == JobState.RUNNING)
        .values(state=JobState.DONE, updated_at=now, finished_at=now, lease_until=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def retry(
    session: Session,
    job: Job,
    *,
    worker_id: str,
    now: datetime,
    error: str,
    delay: float,
    dead: bool = False,
) -> None:
    """Put a failed job back with a delay, or mark it dead after its last attempt."""
    give_up = dead or job.attempts >= job.max_attempts
    session.execute(
        update(Job)
        .where(Job.id == job.id, Job.lease_owner == worker_id)
        .values(
            state=JobState.DEAD if give_up else JobState.PENDING,
            run_at=now + timedelta(seconds=delay),
            last_error=error[:2000],
            updated_at=now,
            finished_at=now if give_up else None,
            lease_owner=None,
            lease_until=None,
        )
    )


def requeue(session: Session, job_id: int, *, now: datetime) -> bool:
    """Send a dead job round again (operator action). Returns False if not dead."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == JobState.DEAD)
        .values(state=JobState.PENDING, run_at=now, attempts=0, updated_at=now, finished_at=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def dead_jobs(session: Session, *, limit: int = 100) -> list[Job]:
    return list(
        session.scalars(
            select(Job).where(Job.state == JobState.DEAD).order_by(Job.id.desc()).limit(limit)
        )
    )
