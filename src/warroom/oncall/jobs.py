"""Job handlers of the on-call domain: start escalation, fire levels, send deliveries, sweep."""

from __future__ import annotations

from warroom.incidents import service as incidents
from warroom.jobs.models import Job
from warroom.jobs.runtime import Runtime
from warroom.jobs.worker import Registry, RetryLater
from warroom.notify.service import JOB_DELIVERY
from warroom.oncall import delivery, escalation

SWEEP_EVERY_SECONDS = 2.0


def on_escalation_start(rt: Runtime, job: Job) -> None:
    """`incident.opened` / `incident.escalation_changed`: snapshot the policy, fire level 1."""
    with rt.db.transaction() as s:
        incident = incidents.lock(s, incident_id=int(job.payload["incident_id"]))
        if incident is None:
            return
        escalation.start(
            rt,
            s,
            incident,
            generation=int(job.payload.get("generation", 0)),
            since=job.created_at,
        )


def on_level(rt: Runtime, job: Job) -> None:
    """`escalation.level`: re-check the incident and fire what is due (idempotent)."""
    p = job.payload
    with rt.db.transaction() as s:
        incident = incidents.lock(s, incident_id=int(p["incident_id"]))
        if incident is None or not escalation.is_active(incident):
            return
        if int(p.get("generation", -1)) != incident.escalation_generation:
            return  # acked, or re-planned after a severity change
        snap, started = incident.escalation_snapshot, incident.escalation_started_at
        if snap is None or started is None:
            return
        pos = (int(p["round"]), int(p["level"]))
        if pos <= (incident.escalation_round, incident.escalation_level):
            return  # already fired (by the sweep or a duplicate job)
        due = escalation.due_at(snap, started, *pos)
        if rt.now() < due:
            wait = (due - rt.now()).total_seconds()
        else:
            escalation.advance(rt, s, incident)
            return
    # woke early (the clock moved back): never page early
    raise RetryLater("escalation level not due yet", delay=wait)


def register(registry: Registry) -> None:
    registry.handler(incidents.JOB_OPENED, on_escalation_start)
    registry.handler(incidents.JOB_ESCALATION_CHANGED, on_escalation_start)
    registry.handler(escalation.JOB_LEVEL, on_level)
    registry.handler(JOB_DELIVERY, delivery.deliver, backoff_base=0.5, backoff_cap=30.0)
    registry.sweep("escalation", SWEEP_EVERY_SECONDS, escalation.sweep)
