"""Heartbeat integrations: a ping records life; a sweep opens an incident when pings stop."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from warroom.alerts.models import SourceHeartbeat
from warroom.alerts.service import settle_incident
from warroom.config.schema import Config, Integration
from warroom.incidents import service as incidents
from warroom.incidents import timeline
from warroom.incidents.models import Incident, Status

OK = "ok"
MISSED = "missed"
EV_MISSED = "heartbeat.missed"
EV_RESUMED = "heartbeat.resumed"


def _row(session: Session, integration_id: str, now: datetime) -> SourceHeartbeat:
    row = session.get(SourceHeartbeat, integration_id, with_for_update=True)
    if row is None:
        row = SourceHeartbeat(integration_id=integration_id, last_seen=now, state=OK)
        session.add(row)
        session.flush()
    return row


def ping(session: Session, *, config: Config, integration: Integration, now: datetime) -> str:
    """Record a check-in; a missed heartbeat that resumes is recorded on its incident.

    Returns the state before the ping (ok / missed).
    """
    row = _row(session, integration.id, now)
    before = row.state
    row.last_seen = now
    if row.state == MISSED:
        row.state = OK
        incident = session.get(Incident, row.incident_id) if row.incident_id else None
        if incident is not None and incident.status != Status.RESOLVED:
            actor = f"integration:{integration.id}"
            timeline.add(
                session,
                incident,
                kind=EV_RESUMED,
                actor=actor,
                at=now,
                text=f"Heartbeat {integration.id} resumed",
                data={"integration": integration.id},
            )
            settle_incident(
                session,
                incident,
                policy=config.policies.when_alerts_resolve,
                actor=actor,
                now=now,
                reason="Heartbeat resumed",
            )
    return before


def check(
    session: Session, *, config: Config, integration: Integration, now: datetime
) -> int | None:
    """Open an incident if the heartbeat is overdue; returns its number, else None."""
    assert integration.expect_every is not None
    row = _row(session, integration.id, now)
    if row.state != OK or now - row.last_seen <= integration.expect_every:
        return None
    late = now - row.last_seen
    incident = incidents.create(
        session,
        config=config,
        title=f"Heartbeat missed: {integration.id} has not checked in for {_human(late)}",
        severity=integration.severity.value,
        actor=f"integration:{integration.id}",
        now=now,
        services=[integration.service] if integration.service else [],
        summary=(
            f"No ping from {integration.id} since {row.last_seen.isoformat()}; "
            f"expected every {_human(integration.expect_every)}."
        ),
        source="heartbeat",
        detected_at=row.last_seen + integration.expect_every,
        group_key=f"heartbeat:{integration.id}",
    )
    timeline.add(
        session,
        incident,
        kind=EV_MISSED,
        actor="warroom",
        at=now,
        text=f"Last ping {row.last_seen.isoformat()}",
        data={"integration": integration.id, "last_seen": row.last_seen.isoformat()},
    )
    row.state = MISSED
    row.incident_id = incident.id
    return incident.number


def _human(delta: object) -> str:
    seconds = int(getattr(delta, "total_seconds", lambda: 0)())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
