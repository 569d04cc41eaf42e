"""Audit entries for actions taken over HTTP (API and pages share one shape)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from warroom.auth.service import Principal
from warroom.incidents.models import Incident
from warroom.jobs.runtime import Runtime
from warroom.store import audit


def incident_action(
    s: Session, rt: Runtime, who: Principal, action: str, incident: Incident, **detail: Any
) -> None:
    """Record `action` on an incident by `who`, redacted, in the caller's transaction."""
    audit.record(
        s,
        at=rt.now(),
        actor=who.name,
        action=action,
        target=f"incident:{incident.number}",
        detail=detail,
        redactor=rt.redactor,
    )
