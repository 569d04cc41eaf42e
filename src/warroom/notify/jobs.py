"""Sweep of the notify domain: a delivery whose job went missing is queued again.

Deliveries and their jobs are written in one transaction, so this only
matters when a job row was cancelled or removed by hand (`warroom jobs`);
the delivery handler re-checks the incident, so re-queuing is always safe.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from warroom.core.logging import get_logger
from warroom.jobs import queue
from warroom.jobs.models import Job, JobState
from warroom.jobs.runtime import Runtime
from warroom.jobs.worker import Registry
from warroom.notify import service
from warroom.notify.models import Delivery

log = get_logger("warroom.notify")
ORPHAN_AFTER = timedelta(minutes=2)
SWEEP_EVERY_SECONDS = 30.0
OPEN_STATES = (service.State.QUEUED, service.State.FAILED, service.State.SENDING)


def requeue_orphans(rt: Runtime) -> None:
    now = rt.now()
    with rt.db.transaction() as s:
        rows = s.scalars(
            select(Delivery)
            .where(Delivery.state.in_(OPEN_STATES), Delivery.updated_at < now - ORPHAN_AFTER)
            .order_by(Delivery.id)
            .limit(100)
        ).all()
        for d in rows:
            live = s.scalar(
                select(Job.id).where(
                    Job.kind == service.JOB_DELIVERY,
                    Job.dedup_key.like(f"delivery:{d.id}:%"),
                    Job.state.in_([JobState.PENDING, JobState.RUNNING]),
                )
            )
            if live is not None:
                continue
            n = int(d.data.get("orphan_requeues", 0)) + 1
            d.data = {**d.data, "orphan_requeues": n}
            d.updated_at = now
            queue.enqueue(
                s,
                kind=service.JOB_DELIVERY,
                payload={"delivery_id": d.id},
                now=now,
                incident_id=d.incident_id,
                dedup_key=f"delivery:{d.id}:orphan{n}",
                max_attempts=100,
                priority=service.PRIORITY_FIRST,
            )
            log.warning("delivery_requeued", delivery=d.id, state=d.state)


def register(registry: Registry) -> None:
    registry.sweep("notify.orphans", SWEEP_EVERY_SECONDS, requeue_orphans)
