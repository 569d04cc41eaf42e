"""Job handlers of the incidents domain: the respond-by breach check."""

from __future__ import annotations

from warroom.core.clock import as_utc
from warroom.incidents import service, timeline
from warroom.incidents.models import Status
from warroom.jobs.models import Job
from warroom.jobs.runtime import Runtime
from warroom.jobs.worker import Registry, RetryLater


def breach_check(rt: Runtime, job: Job) -> None:
    """Record a breach when the respond-by time passed unacknowledged (re-checked here)."""
    now = rt.now()
    with rt.db.transaction() as s:
        incident = service.lock(s, incident_id=int(job.payload["incident_id"]))
        if incident is None or incident.respond_by is None:
            return
        if incident.acknowledged_at is not None or incident.status == Status.RESOLVED:
            return
        if incident.breached_at is not None:
            return
        if as_utc(incident.respond_by).isoformat() != job.payload.get("respond_by"):
            return  # the clock was re-computed (severity change); a newer job owns it
        if now < incident.respond_by:
            # woke early (clock moved back): try again when it is really due
            raise RetryLater("not due yet", delay=(incident.respond_by - now).total_seconds())
        incident.breached_at = now
        timeline.add(
            s,
            incident,
            kind=timeline.BREACH,
            actor="warroom",
            at=now,
            text=f"Respond-by time passed without acknowledgement ({incident.severity})",
            data={"respond_by": incident.respond_by.isoformat()},
        )


def register(registry: Registry) -> None:
    registry.handler(service.JOB_BREACH_CHECK, breach_check)
