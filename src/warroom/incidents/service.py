"""Incident lifecycle services. They add and flush, never commit: the caller owns the transaction.

Other domains learn about changes through job rows (outbox): `incident.opened`,
`incident.escalation_changed`, and the breach check. Escalation *state* lives
on the incident row, so ack/resolve stop pending levels in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from warroom.config.schema import Config
from warroom.core.errors import Conflict, InvalidInput, NotFound
from warroom.core.redact import Redactor
from warroom.incidents import policy, timeline
from warroom.incidents.models import Incident, Status, TimelineEvent
from warroom.jobs import queue
from warroom.store import counters

# Job kinds this domain publishes (handled by higher domains or by itself).
JOB_OPENED = "incident.opened"  # oncall starts escalation
JOB_ESCALATION_CHANGED = "incident.escalation_changed"  # oncall re-plans (severity change)
JOB_BREACH_CHECK = "incident.breach_check"  # incidents.jobs
ESCALATION_JOB_KINDS = ("escalation.level", "notify.delivery")

MAX_TITLE = 300
MAX_TEXT = 20_000
TRANSITIONS: dict[str, set[str]] = {
    Status.INVESTIGATING: {Status.IDENTIFIED, Status.MONITORING, Status.RESOLVED},
    Status.IDENTIFIED: {Status.INVESTIGATING, Status.MONITORING, Status.RESOLVED},
    Status.MONITORING: {Status.INVESTIGATING, Status.IDENTIFIED, Status.RESOLVED},
    Status.RESOLVED: {Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING},  # reopen
}


def _clean_title(title: str) -> str:
    text = " ".join(str(title).split())  # no CR/LF: titles end up in mail subjects and logs
    if not text:
        raise InvalidInput("title must not be empty", field="title")
    if len(text) > MAX_TITLE:
        raise InvalidInput(f"title longer than {MAX_TITLE} characters", field="title")
    return text


def get(session: Session, *, number: int, for_update: bool = False) -> Incident | None:
    """An incident by number; `for_update` locks its row on PostgreSQL (SQLite writers are
    serialised already), so two people acting at once do not both see the old state."""
    stmt = select(Incident).where(Incident.number == number)
    if for_update and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def get_or_raise(session: Session, *, number: int, for_update: bool = False) -> Incident:
    """Raises NotFound naming the number."""
    incident = get(session, number=number, for_update=for_update)
    if incident is None:
        raise NotFound(f"incident {number} does not exist", field="number")
    return incident


def lock(session: Session, *, incident_id: int) -> Incident | None:
    """Load an incident locking its row (PostgreSQL) so handlers re-check state safely."""
    stmt = select(Incident).where(Incident.id == incident_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def create(
    session: Session,
    *,
    config: Config,
    title: str,
    severity: str,
    actor: str,
    now: datetime,
    services: Sequence[str] = (),
    runbooks: Sequence[str] = (),
    summary: str = "",
    customer_impact: str = "",
    source: str = "manual",
    is_drill: bool = False,
    detected_at: datetime | None = None,
    group_key: str | None = None,
    commander: str | None = None,
    escalation_policy: str | None = None,
    redactor: Redactor | None = None,
    page: bool = True,
) -> Incident:
    """Declare an incident: number, clocks, first timeline event, jobs for escalation and breach."""
    sev = policy.parse_severity(severity)
    if len(summary) > MAX_TEXT or len(customer_impact) > MAX_TEXT:
        raise InvalidInput(f"text longer than {MAX_TEXT} characters", field="summary")
    number = counters.next_value(session, "incident")
    sev_policy = policy.policy(config, sev)
    incident = Incident(
        number=number,
        title=_clean_title(title),
        severity=sev.value,
        status=Status.INVESTIGATING,
        summary=summary,
        customer_impact=customer_impact,
        services=list(dict.fromkeys(services)),
        runbooks=list(dict.fromkeys(runbooks)),
        source=source,
        is_drill=is_drill,
        commander=commander,
        responders=[],
        created_by=actor,
        detected_at=detected_at or now,
        declared_at=now,
        respond_by=now + sev_policy.respond_within,
        escalation_policy=escalation_policy or sev_policy.escalation or None,
        group_key=group_key,
        created_at=now,
        updated_at=now,
    )
    session.add(incident)
    session.flush()
    timeline.add(
        session,
        incident,
        kind=timeline.DECLARED,
        actor=actor,
        at=now,
        text=f"{sev.value} declared: {incident.title}" + (" (drill)" if is_drill else ""),
        data={
            "severity": sev.value,
            "source": source,
            "respond_by": incident.respond_by.isoformat() if incident.respond_by else None,
            "services": incident.services,
            "runbooks": incident.runbooks,
        },
        redactor=redactor,
    )
    if page:
        queue.enqueue(
            session,
            kind=JOB_OPENED,
            payload={"incident_id": incident.id, "generation": incident.escalation_generation},
            now=now,
            incident_id=incident.id,
            dedup_key=f"opened:{incident.id}",
            priority=10,
        )
    _schedule_breach_check(session, incident, now=now)
    return incident


def _schedule_breach_check(session: Session, incident: Incident, *, now: datetime) -> None:
    if incident.respond_by is None:
        return
    queue.enqueue(
        session,
        kind=JOB_BREACH_CHECK,
        payload={"incident_id": incident.id, "respond_by": incident.respond_by.isoformat()},
        now=now,
        run_at=incident.respond_by,
        incident_id=incident.id,
        dedup_key=f"breach:{incident.id}:{incident.respond_by.isoformat()}",
    )


def _stop_escalation(session: Session, incident: Incident, *, now: datetime) -> None:
    incident.next_escalation_at = None
    incident.escalation_generation += 1
    queue.cancel(session, incident_id=incident.id, kinds=ESCALATION_JOB_KINDS, now=now)


def acknowledge(
    session: Session, incident: Incident, *, actor: str, now: datetime, via: str = "api"
) -> bool:
    """Acknowledge; stops pending escalation in this transaction. False if already acked."""
    if incident.acknowledged_at is not None:
        return False
    if incident.status == Status.RESOLVED:
        raise Conflict(f"incident {incident.number} is resolved", hint="reopen it first")
    incident.acknowledged_at = now
    incident.acknowledged_by = actor
    _stop_escalation(session, incident, now=now)
    timeline.add(
        session,
        incident,
        kind=timeline.ACKNOWLEDGED,
        actor=actor,
        at=now,
        text=f"Acknowledged by {actor} via {via}",
        data={"via": via, "within_sla": incident.respond_by is None or now <= incident.respond_by},
    )
    return True


def set_status(
    session: Session, incident: Incident, *, status: str, actor: str, now: datetime, text: str = ""
) -> None:
    try:
        new = Status(status)
    except ValueError:
        raise InvalidInput(
            f"unknown status {status!r}",
            field="status",
            hint="use investigating, identified, monitoring or resolved",
        ) from None
    old = Status(incident.status)
    if new == old:
        return
    if new not in TRANSITIONS[old]:
        raise Conflict(f"cannot move from {old} to {new}", field="status")
    incident.status = new
    kind = timeline.STATUS
    if new == Status.RESOLVED:
        incident.resolved_at = now
        incident.mitigated_at = incident.mitigated_at or now
        if incident.acknowledged_at is None:
            incident.acknowledged_at = now
            incident.acknowledged_by = actor
        _stop_escalation(session, incident, now=now)
        kind = timeline.RESOLVED
    elif old == Status.RESOLVED:
        incident.resolved_at = None
        kind = timeline.REOPENED
    if new == Status.MONITORING and incident.mitigated_at is None:
        incident.mitigated_at = now
    timeline.add(
        session,
        incident,
        kind=kind,
        actor=actor,
        at=now,
        text=text or f"Status {old} → {new}",
        data={"from": old.value, "to": new.value},
    )


def resolve(
    session: Session, incident: Incident, *, actor: str, now: datetime, text: str = ""
) -> None:
    if incident.status == Status.RESOLVED:
        raise Conflict(f"incident {incident.number} is already resolved")
    set_status(session, incident, status=Status.RESOLVED, actor=actor, now=now, text=text)


def set_severity(
    session: Session,
    incident: Incident,
    *,
    config: Config,
    severity: str,
    actor: str,
    now: datetime,
) -> None:
    """Change severity: re-compute the respond-by clock and re-plan escalation."""
    sev = policy.parse_severity(severity)
    old = incident.severity
    if sev.value == old:
        return
    incident.severity = sev.value
    sev_policy = policy.policy(config, sev)
    incident.escalation_policy = sev_policy.escalation or None
    if incident.acknowledged_at is None and incident.status != Status.RESOLVED:
        incident.respond_by = now + sev_policy.respond_within
        _schedule_breach_check(session, incident, now=now)
        _stop_escalation(session, incident, now=now)
        incident.escalation_snapshot = None
        incident.escalation_level = -1
        incident.escalation_round = 0
        queue.enqueue(
            session,
            kind=JOB_ESCALATION_CHANGED,
            payload={"incident_id": incident.id, "generation": incident.escalation_generation},
            now=now,
            incident_id=incident.id,
            dedup_key=f"escalation-changed:{incident.id}:{incident.escalation_generation}",
            priority=10,
        )
    timeline.add(
        session,
        incident,
        kind=timeline.SEVERITY,
        actor=actor,
        at=now,
        text=f"Severity {old} → {sev.value}",
        data={"from": old, "to": sev.value},
    )


ROLES = ("commander", "communications", "scribe")


def set_role(
    session: Session,
    incident: Incident,
    *,
    role: str,
    person: str | None,
    actor: str,
    now: datetime,
) -> None:
    if role == "responder":
        if person and person not in incident.responders:
            incident.responders = [*incident.responders, person]
    elif role in ROLES:
        setattr(incident, role, person)
    else:
        raise InvalidInput(
            f"unknown role {role!r}",
            field="role",
            hint="use commander, communications, scribe or responder",
        )
    timeline.add(
        session,
        incident,
        kind=timeline.ROLE,
        actor=actor,
        at=now,
        text=f"{role} → {person or 'nobody'}",
        data={"role": role, "person": person},
    )


def add_note(
    session: Session,
    incident: Incident,
    *,
    text: str,
    actor: str,
    now: datetime,
    redactor: Redactor | None = None,
) -> TimelineEvent:
    """Add a person's note to the timeline; returns the event."""
    if not text.strip():
        raise InvalidInput("note must not be empty", field="text")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"note longer than {MAX_TEXT} characters", field="text")
    return timeline.add(
        session, incident, kind=timeline.NOTE, actor=actor, at=now, text=text, redactor=redactor
    )


DETAILS = ("summary", "customer_impact", "services", "runbooks")


def update_details(
    session: Session,
    incident: Incident,
    *,
    actor: str,
    now: datetime,
    summary: str | None = None,
    customer_impact: str | None = None,
    services: Sequence[str] | None = None,
    runbooks: Sequence[str] | None = None,
    redactor: Redactor | None = None,
) -> list[str]:
    """Change what is known (summary, impact, services, linked runbooks); returns changed fields.

    Each change is one timeline event with the old and new values.
    """
    changed: list[str] = []
    for name, value in (("summary", summary), ("customer_impact", customer_impact)):
        if value is None:
            continue
        if len(value) > MAX_TEXT:
            raise InvalidInput(f"{name} longer than {MAX_TEXT} characters", field=name)
        text = redactor.redact(value) if redactor is not None else value
        if text != getattr(incident, name):
            setattr(incident, name, text)
            changed.append(name)
    for name, items in (("services", services), ("runbooks", runbooks)):
        if items is None:
            continue
        clean = list(dict.fromkeys(str(i).strip() for i in items if str(i).strip()))
        if clean != list(getattr(incident, name) or []):
            setattr(incident, name, clean)
            changed.append(name)
    if changed:
        timeline.add(
            session,
            incident,
            kind=timeline.DETAILS,
            actor=actor,
            at=now,
            text="Updated " + ", ".join(f.replace("_", " ") for f in changed),
            data={f: getattr(incident, f) for f in changed},
            redactor=redactor,
        )
    return changed


def list_incidents(
    session: Session,
    *,
    open_only: bool = False,
    severity: str | None = None,
    status: str | None = None,
    service: str | None = None,
    query: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[Sequence[Incident], int]:
    stmt = select(Incident)
    if open_only:
        stmt = stmt.where(Incident.status != Status.RESOLVED)
    if severity:
        stmt = stmt.where(Incident.severity == policy.parse_severity(severity).value)
    if status:
        stmt = stmt.where(Incident.status == status)
    if query:
        # the user's text is matched literally: % and _ are not wildcards here
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Incident.title.ilike(f"%{escaped}%", escape="\\"))
    if service:
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.where(type_coerce(Incident.services, JSONB).contains([service]))
        else:
            each = func.json_each(Incident.services).table_valued("value")
            stmt = stmt.where(select(each.c.value).where(each.c.value == service).exists())
    total = int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    rows = session.scalars(stmt.order_by(Incident.number.desc()).limit(limit).offset(offset)).all()
    return rows, total


def count_open(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Incident.severity, func.count())
        .where(Incident.status != Status.RESOLVED)
        .group_by(Incident.severity)
    ).all()
    return {sev: int(n) for sev, n in rows}


def summary_dict(incident: Incident) -> dict[str, Any]:
    def iso(d: datetime | None) -> str | None:
        return d.isoformat() if d else None

    return {
        "number": incident.number,
        "title": incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "services": incident.services,
        "runbooks": incident.runbooks,
        "is_drill": incident.is_drill,
        "declared_at": iso(incident.declared_at),
        "acknowledged_at": iso(incident.acknowledged_at),
        "resolved_at": iso(incident.resolved_at),
        "respond_by": iso(incident.respond_by),
    }
