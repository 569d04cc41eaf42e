"""Job kinds and sweeps of this domain: postmortem reminders and runbook-update closing.

Reminders: a P0/P1 (any severity whose policy says `postmortem: required`)
that is resolved and has no published postmortem gets a reminder at
resolution and then every `policies.postmortem_reminder_every`, until the
postmortem is published or the incident reopens. The sweep derives what is
due from the incident and its reminder events, and the job's dedup key names
the reminder's sequence number, so several workers never send one twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warroom.config.schema import Config
from warroom.core.clock import as_utc
from warroom.core.logging import get_logger
from warroom.incidents import service as incidents
from warroom.incidents import timeline
from warroom.incidents.models import Incident, Status, TimelineEvent
from warroom.jobs import queue
from warroom.jobs.models import Job
from warroom.jobs.runtime import Runtime
from warroom.jobs.worker import Registry
from warroom.notify import service as notify
from warroom.postmortems import actions
from warroom.postmortems.models import Postmortem
from warroom.postmortems.runbookrefs import load_catalog

log = get_logger("warroom.postmortems")

JOB_REMINDER = "postmortem.reminder"
REMINDER_EVENT = "postmortem.reminder"
PURPOSE_REMINDER = "reminder"
REMINDER_SWEEP_SECONDS = 60.0
RUNBOOK_SWEEP_SECONDS = 120.0
MAX_REMINDERS = 60  # a forgotten postmortem should not nag forever
SWEEP_BATCH = 500


def required_severities(config: Config) -> list[str]:
    return [sev.value for sev, pol in config.severities.items() if pol.postmortem == "required"]


def _reminders_sent(session: Session, incident_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(TimelineEvent)
            .where(TimelineEvent.incident_id == incident_id, TimelineEvent.kind == REMINDER_EVENT)
        )
        or 0
    )


def _published(session: Session, incident_id: int) -> bool:
    state = session.scalar(select(Postmortem.state).where(Postmortem.incident_id == incident_id))
    return state == "published"


def reminder_due_at(incident: Incident, sent: int, config: Config) -> datetime | None:
    if incident.resolved_at is None or sent >= MAX_REMINDERS:
        return None
    return as_utc(incident.resolved_at) + sent * config.policies.postmortem_reminder_every


def sweep_reminders(rt: Runtime) -> int:
    """Enqueue the reminders that are due; returns how many jobs were written."""
    now = rt.now()
    sevs = required_severities(rt.config)
    if not sevs:
        return 0
    every = rt.config.policies.postmortem_reminder_every
    written = 0
    with rt.db.transaction() as s:
        published = select(Postmortem.incident_id).where(Postmortem.state == "published")
        candidates = s.scalars(
            select(Incident)
            .where(
                Incident.status == Status.RESOLVED,
                Incident.is_drill.is_(False),
                Incident.severity.in_(sevs),
                Incident.id.not_in(published),
                # past the last reminder: no longer a candidate, so old debts never
                # crowd the batch out
                Incident.resolved_at >= now - MAX_REMINDERS * every,
            )
            .order_by(Incident.resolved_at.desc())
            .limit(SWEEP_BATCH)
        ).all()
        for incident in candidates:
            sent = _reminders_sent(s, incident.id)
            due = reminder_due_at(incident, sent, rt.config)
            if due is None or due > now:
                continue
            job = queue.enqueue(
                s,
                kind=JOB_REMINDER,
                payload={"incident_id": incident.id, "seq": sent},
                now=now,
                incident_id=incident.id,
                dedup_key=f"pm-reminder:{incident.id}:{sent}",
            )
            written += int(job is not None)
    return written


def _recipients(incident: Incident, config: Config) -> list[str]:
    people = [incident.commander, incident.acknowledged_by, incident.created_by]
    return [p for p in dict.fromkeys(people) if p and config.person(p) is not None]


def on_reminder(rt: Runtime, job: Job) -> None:
    """Re-check, then record the reminder on the timeline and notify the people who ran it."""
    incident_id = int(job.payload["incident_id"])
    seq = int(job.payload["seq"])
    now = rt.now()
    with rt.db.transaction() as s:
        incident = incidents.lock(s, incident_id=incident_id)
        if incident is None or incident.status != Status.RESOLVED or incident.is_drill:
            return
        if _published(s, incident.id) or _reminders_sent(s, incident.id) != seq:
            return  # published meanwhile, or another worker already sent this one
        recipients = _recipients(incident, rt.config)
        subject = f"Postmortem due for incident #{incident.number} ({incident.severity})"
        body = (
            f'Incident #{incident.number} "{incident.title}" was resolved on '
            f"{as_utc(incident.resolved_at or now).strftime('%Y-%m-%d %H:%M')} UTC. "
            f"{incident.severity} incidents need a published postmortem: "
            f"`warroom postmortem create {incident.number}`, then publish it."
        )
        timeline.add(
            s,
            incident,
            kind=REMINDER_EVENT,
            actor="warroom",
            at=now,
            text=f"Postmortem reminder {seq + 1} sent to {', '.join(recipients) or 'nobody configured'}",
            data={"seq": seq, "recipients": recipients},
        )
        for person in recipients:
            for target in notify.contact_targets(rt.config, person):
                notify.create(
                    s,
                    incident_id=incident.id,
                    purpose=PURPOSE_REMINDER,
                    level=0,
                    round_=seq,
                    target=target,
                    subject=subject,
                    body=body,
                    now=now,
                    data={"number": incident.number, "kind": "postmortem_reminder"},
                    channel=rt.config.channels.get(target.channel),
                )
    log.info("postmortem_reminder", incident=incident_id, seq=seq)


def sweep_runbook_actions(rt: Runtime) -> int:
    """Close runbook_update action items whose runbook changed; returns how many closed."""
    catalog = load_catalog(rt.settings.runbooks_path)
    if not catalog:
        return 0
    with rt.db.transaction() as s:
        closed = actions.close_updated_runbook_items(s, catalog=catalog, now=rt.now())
        for item in closed:
            log.info("action_item_closed", item=item.id, reason=item.closed_reason)
        return len(closed)


def _sweep_reminders(rt: Runtime) -> None:
    sweep_reminders(rt)


def _sweep_runbook_actions(rt: Runtime) -> None:
    sweep_runbook_actions(rt)


def register(registry: Registry) -> None:
    registry.handler(JOB_REMINDER, on_reminder)
    registry.sweep("postmortem_reminders", REMINDER_SWEEP_SECONDS, _sweep_reminders)
    registry.sweep("runbook_action_items", RUNBOOK_SWEEP_SECONDS, _sweep_runbook_actions)
