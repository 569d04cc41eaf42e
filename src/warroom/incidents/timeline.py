"""Append timeline events (the record the postmortem is written from)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from warroom.core.redact import Redactor
from warroom.incidents.models import Incident, TimelineEvent

# Event kinds other domains write; the set is open, these are the common ones.
DECLARED = "incident.declared"
ACKNOWLEDGED = "incident.acknowledged"
STATUS = "incident.status"
SEVERITY = "incident.severity"
ROLE = "incident.role"
DETAILS = "incident.details"
NOTE = "note"
UPDATE_SENT = "update.sent"
BREACH = "clock.breached"
RESOLVED = "incident.resolved"
REOPENED = "incident.reopened"


def add(
    session: Session,
    incident: Incident,
    *,
    kind: str,
    actor: str,
    at: datetime,
    text: str = "",
    data: dict[str, Any] | None = None,
    public: bool = False,
    redactor: Redactor | None = None,
) -> TimelineEvent:
    """Append one event in the caller's transaction; text and data are redacted."""
    if redactor is not None:
        text = redactor.redact(text)
        data = redactor.redact_obj(data or {})  # type: ignore[assignment]
    event = TimelineEvent(
        incident_id=incident.id,
        at=at,
        kind=kind,
        actor=actor,
        text=text,
        data=data or {},
        public=public,
    )
    session.add(event)
    incident.updated_at = at
    session.flush()
    return event


def events(
    session: Session, incident_id: int, *, after_id: int = 0, limit: int = 1000
) -> Sequence[TimelineEvent]:
    return session.scalars(
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident_id, TimelineEvent.id > after_id)
        .order_by(TimelineEvent.id)
        .limit(limit)
    ).all()
