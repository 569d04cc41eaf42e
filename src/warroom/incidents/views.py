"""Stable JSON shapes of incidents and timeline events (API responses and `--json` output)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from warroom.config.schema import Config
from warroom.core.clock import as_utc
from warroom.incidents import comms, policy
from warroom.incidents.models import Incident, TimelineEvent


def iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value else None


def summary(incident: Incident) -> dict[str, Any]:
    """The list-row shape."""
    return {
        "number": incident.number,
        "title": incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "services": list(incident.services or []),
        "runbooks": list(incident.runbooks or []),
        "source": incident.source,
        "is_drill": incident.is_drill,
        "commander": incident.commander,
        "declared_at": iso(incident.declared_at),
        "acknowledged_at": iso(incident.acknowledged_at),
        "acknowledged_by": incident.acknowledged_by,
        "resolved_at": iso(incident.resolved_at),
        "respond_by": iso(incident.respond_by),
        "breached_at": iso(incident.breached_at),
    }


def detail(incident: Incident, *, config: Config, now: datetime) -> dict[str, Any]:
    """One incident with roles, clocks, severity policy and war-room details."""
    sev = policy.policy(config, incident.severity)
    respond_by = incident.respond_by
    remaining: float | None = None
    if respond_by is not None and incident.acknowledged_at is None and incident.is_open:
        remaining = round((as_utc(respond_by) - as_utc(now)).total_seconds(), 3)
    return {
        **summary(incident),
        "summary": incident.summary,
        "customer_impact": incident.customer_impact,
        "is_public": incident.is_public,
        "created_by": incident.created_by,
        "roles": {
            "commander": incident.commander,
            "communications": incident.communications,
            "scribe": incident.scribe,
            "responders": list(incident.responders or []),
        },
        "clocks": {
            "detected_at": iso(incident.detected_at),
            "declared_at": iso(incident.declared_at),
            "acknowledged_at": iso(incident.acknowledged_at),
            "mitigated_at": iso(incident.mitigated_at),
            "resolved_at": iso(incident.resolved_at),
            "respond_by": iso(respond_by),
            "respond_seconds_left": remaining,
            "breached_at": iso(incident.breached_at),
        },
        "severity_policy": {
            "name": sev.name,
            "description": sev.description,
            "respond_within_seconds": int(sev.respond_within.total_seconds()),
            "escalation": sev.escalation or None,
        },
        "escalation": {
            "policy": incident.escalation_policy,
            "level": incident.escalation_level,
            "round": incident.escalation_round,
            "next_at": iso(incident.next_escalation_at),
        },
        "war_room": comms.war_room(config),
    }


def event(ev: TimelineEvent) -> dict[str, Any]:
    return {
        "id": ev.id,
        "at": iso(ev.at),
        "kind": ev.kind,
        "actor": ev.actor,
        "text": ev.text,
        "data": ev.data or {},
        "public": ev.public,
    }
