"""Incidents API: declare, list, show, lifecycle actions, timeline and communications.

Roles: viewer reads; responder declares, acknowledges, changes status, adds
notes and sends updates; commander changes severity, resolves, assigns roles
and publishes updates to the status page. Every change writes an audit entry
in the same transaction as the change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from warroom.alerts.models import Alert
from warroom.auth.models import Role
from warroom.core import faults
from warroom.core.errors import InvalidInput, PermissionDenied
from warroom.incidents import comms, policy, timeline, views
from warroom.incidents import service as incidents
from warroom.incidents.models import Incident, Status
from warroom.jobs.runtime import Runtime
from warroom.runbooks.models import RunbookRun
from warroom.statuspage import service as statuspage
from warroom.web import audit as web_audit
from warroom.web.deps import Commander, JsonBody, Responder, RuntimeDep, Viewer

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
policy_router = APIRouter(prefix="/api/v1", tags=["incidents"])

Number = Annotated[int, Path(ge=1, le=2_000_000_000, description="incident number")]
Json = Annotated[None, JsonBody]
ShortText = Annotated[str, Field(max_length=2_000)]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class _In(BaseModel):
    # strict: a number where a string belongs is an error, not silently converted
    model_config = ConfigDict(extra="forbid", strict=True)


class DeclareIn(_In):
    title: Annotated[str, Field(min_length=1, max_length=incidents.MAX_TITLE)]
    severity: Annotated[str, Field(min_length=1, max_length=10, examples=["P1"])]
    services: Annotated[list[Name], Field(max_length=20)] = []
    service: Name | None = None
    runbook: Name | None = None
    runbooks: Annotated[list[Name], Field(max_length=20)] = []
    summary: Annotated[str, Field(max_length=incidents.MAX_TEXT)] = ""
    customer_impact: Annotated[str, Field(max_length=incidents.MAX_TEXT)] = ""
    commander: Name | None = None
    detected_at: datetime | None = None


class TextIn(_In):
    text: ShortText = ""


class StatusIn(_In):
    status: Annotated[str, Field(min_length=1, max_length=20, examples=["identified"])]
    text: ShortText = ""


class SeverityIn(_In):
    severity: Annotated[str, Field(min_length=1, max_length=10, examples=["P0"])]


class DetailsIn(_In):
    summary: Annotated[str, Field(max_length=incidents.MAX_TEXT)] | None = None
    customer_impact: Annotated[str, Field(max_length=incidents.MAX_TEXT)] | None = None
    services: Annotated[list[Name], Field(max_length=20)] | None = None
    runbooks: Annotated[list[Name], Field(max_length=20)] | None = None


class NoteIn(_In):
    text: Annotated[str, Field(min_length=1, max_length=incidents.MAX_TEXT)]


class RoleIn(_In):
    role: Annotated[str, Field(min_length=1, max_length=20, examples=["commander"])]
    person: Name | None = None


class UpdateIn(_In):
    template: Annotated[str, Field(min_length=1, max_length=40, examples=["internal_update"])]
    message: Annotated[str, Field(max_length=comms.MAX_MESSAGE)] = ""
    public: bool = False
    public_title: Annotated[str, Field(min_length=1, max_length=200)] | None = None


def install(app: FastAPI) -> None:
    app.include_router(policy_router)


@policy_router.get("/severities")
def severities(rt: RuntimeDep, who: Viewer) -> dict[str, Any]:
    """The severity policy table from config (the README's table unless overridden)."""
    items = []
    for sev in policy.SEVERITIES:
        p = policy.policy(rt.config, sev)
        items.append(
            {
                "severity": sev,
                "name": p.name,
                "description": p.description,
                "respond_within_seconds": int(p.respond_within.total_seconds()),
                "escalation": p.escalation or None,
                "postmortem": p.postmortem,
            }
        )
    return {"items": items, "war_room": comms.war_room(rt.config)}


def _detail(s: Session, rt: Runtime, incident: Incident) -> dict[str, Any]:
    body = views.detail(incident, config=rt.config, now=rt.now())
    alerts = s.scalars(
        select(Alert).where(Alert.incident_id == incident.id).order_by(Alert.id).limit(200)
    ).all()
    body["alerts"] = [
        {
            "id": a.id,
            "integration": a.integration_id,
            "fingerprint": a.fingerprint,
            "name": a.name,
            "status": a.status,
            "summary": rt.redactor.redact(a.summary),
            "labels": rt.redactor.redact_obj(a.labels or {}),
            "count": a.count,
            "first_seen": views.iso(a.first_seen),
            "last_seen": views.iso(a.last_seen),
        }
        for a in alerts
    ]
    runs = s.scalars(
        select(RunbookRun)
        .where(RunbookRun.incident_id == incident.id)
        .order_by(RunbookRun.id)
        .limit(200)
    ).all()
    body["runs"] = [
        {
            "id": r.id,
            "runbook": r.runbook_id,
            "actor": r.actor,
            "trigger": r.trigger,
            "dry_run": r.dry_run,
            "outcome": r.outcome,
            "started_at": views.iso(r.started_at),
            "finished_at": views.iso(r.finished_at),
        }
        for r in runs
    ]
    return body


@router.get("")
def list_incidents(
    rt: RuntimeDep,
    who: Viewer,
    open_only: Annotated[
        bool, Query(alias="open", description="only incidents not resolved")
    ] = False,
    severity: Annotated[str | None, Query(max_length=10)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    service: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[str | None, Query(max_length=200, description="text in the title")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    """Incidents, newest first, with filters and `limit`/`offset` pagination (`total` counts all)."""
    if severity is not None:
        policy.parse_severity(severity)
    if status is not None and status not in {s.value for s in Status}:
        raise InvalidInput(
            f"unknown status {status!r}",
            field="status",
            hint="use investigating, identified, monitoring or resolved",
        )
    with rt.db.read() as s:
        rows, total = incidents.list_incidents(
            s,
            open_only=open_only,
            severity=severity,
            status=status,
            service=service,
            query=q,
            limit=limit,
            offset=offset,
        )
        items = [views.summary(r) for r in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post("", status_code=201)
def declare(rt: RuntimeDep, who: Responder, _json: Json, body: DeclareIn) -> dict[str, Any]:
    """Declare an incident: starts its respond-by clock and escalation."""
    services = [*body.services, *([body.service] if body.service else [])]
    runbooks = [*body.runbooks, *([body.runbook] if body.runbook else [])]
    now = rt.now()
    with rt.db.transaction() as s:
        incident = incidents.create(
            s,
            config=rt.config,
            title=rt.redactor.redact(body.title),
            severity=body.severity,
            actor=who.name,
            now=now,
            services=services,
            runbooks=runbooks,
            summary=rt.redactor.redact(body.summary),
            customer_impact=rt.redactor.redact(body.customer_impact),
            commander=body.commander,
            detected_at=body.detected_at,
            redactor=rt.redactor,
        )
        web_audit.incident_action(
            s, rt, who, "incident.declare", incident, severity=incident.severity
        )
        result = _detail(s, rt, incident)
    faults.hit("after_declare_commit")
    return result


@router.get("/{number}")
def show(rt: RuntimeDep, who: Viewer, number: Number) -> dict[str, Any]:
    """One incident with roles, clocks, war-room details, linked alerts and runbook runs."""
    with rt.db.read() as s:
        return _detail(s, rt, incidents.get_or_raise(s, number=number))


@router.post("/{number}/ack")
def acknowledge(
    rt: RuntimeDep, who: Responder, _json: Json, number: Number, body: TextIn | None = None
) -> dict[str, Any]:
    """Acknowledge: stops the respond-by clock and pending escalation. Repeating it is a no-op."""
    with rt.db.transaction() as s:
        incident = incidents.get_or_raise(s, number=number, for_update=True)
        changed = incidents.acknowledge(s, incident, actor=who.name, now=rt.now(), via="api")
        if changed:
            web_audit.incident_action(s, rt, who, "incident.ack", incident)
        result = _detail(s, rt, incident)
    result["changed"] = changed
    return result


@router.post("/{number}/resolve")
def resolve(
    rt: RuntimeDep, who: Commander, _json: Json, number: Number, body: TextIn | None = None
) -> dict[str, Any]:
    """Resolve (commander). Stops escalation; a resolved incident can be reopened via /status."""
    text = rt.redactor.redact(body.text) if body else ""
    with rt.db.transaction() as s:
        incident = incidents.get_or_raise(s, number=number, for_update=True)
        incidents.resolve(s, incident, actor=who.name, now=rt.now(), text=text)
        web_audit.incident_action(s, rt, who, "incident.resolve", incident)
        return _detail(s, rt, incident)


@router.post("/{number}/status")
def set_status(
    rt: RuntimeDep, who: Responder, _json: Json, number: Number, body: StatusIn
) -> dict[str, Any]:
    """Move between investigating, identified and monitoring; reopen. Resolving needs commander."""
    if body.status.strip().lower() == Status.RESOLVED and not who.allows(Role.COMMANDER):
        raise PermissionDenied(
            f"resolving needs the commander role (you are {who.role.value})", field="status"
        )
    with rt.db.transaction() as s:
        incident = incidents.get_or_raise(s, number=number, for_update=True)
        old = incident.status
        incidents.set_status(
            s,
            incident,
            status=body.status.strip().lower(),
            actor=who.name,
            now=rt.now(),
            text=rt.redactor.redact(body.text),
        )
        if incident.status != old:
            web_audit.incident_action(
                s, rt, who, "incident.status", incident, old=old, new=incident.status
            )
        return _detail(s, rt, incident)


@router.post("/{number}/severity")
def set_severity(
    rt: RuntimeDep, who: Commander, _json: Json, number: Number, body: SeverityIn
) -> dict[str, Any]:
    """Change severity (commander): re-computes the respond-by clock and re-plans escalation."""
    with rt.db.transaction() as s:
        incident = incidents.get_or_raise(s, number=number, for_update=True)
        old = incident.severity
        incidents.set_severity(
            s, incident, config=rt.config, severity=body.severity, actor=who.name, now=rt.now()
        )
        if incident.severity != old:
            web_audit.incident_action(
                s, rt, who, "incident.severity", incident, old=old, new=incident.severity
            )
        return _detail(s, rt, incident)


@router.post("/{number}/details")
def update_details(
    rt: RuntimeDep, who: Responder, _json: Json, number: Number, body: DetailsIn
) -> dict[str, Any]:
    """Update summary, customer impact, affected services or linked runbooks (fields given only)."""
    with rt.db.transaction() as s:
        incident = incidents.get_or_raise(s, number=number, for_update=True)
        changed = incidents.update_details(
            s,
            incident,
            actor=who.name,
            now=rt.now(),
            summary=body.summary,
            customer_impact=body.customer_impact,
            services=body.services,
            runbooks=body.runbooks,
            redactor=rt.redactor,
        )
        if changed:
            web_audit.incident_action(s, rt, who, "incident.details", incident, fields=changed)
        return _detail(s, rt, incident)


@router.post("/{number}/notes", status_code=201)
def add_note(
    rt: RuntimeDep, who: Responder, _json: Json, number: Number, body: NoteIn
) -> dict[str, Any]:
    """Add a note to the timeline (secrets in it are redacted)."""
    now = rt.now()
    with rt.db.transaction() as s:
        incident = incidents.get_or_raise(s, number=number, for_update=True)
        incidents.add_note(
            s, incident, text=body.text, actor=who.name, now=now, redactor=rt.redactor
        )
        event = timeline.events(s, incident.id, limit=1_000_000)[-1]
        web_audit.incident_action(s, rt, who, "incident.note", incident, event=event.id)
        return views.event(event)


@router.post("/{number}/roles")
def set_role(
    rt: RuntimeDep, who: Commander, _json: Json, number: Number, body: RoleIn
) -> dict[str, Any]:
    """Assign commander, communications, scribe, or add a responder (commander)."""
    with rt.db.transaction() as s:
        incident = incidents.get_or_raise(s, number=number, for_update=True)
        incidents.set_role(
            s, incident, role=body.role, person=body.person, actor=who.name, now=rt.now()
        )
        web_audit.incident_action(
            s, rt, who, "incident.role", incident, role=body.role, person=body.person
        )
        return _detail(s, rt, incident)


@router.get("/{number}/timeline")
def get_timeline(
    rt: RuntimeDep,
    who: Viewer,
    number: Number,
    after: Annotated[int, Query(ge=0, description="only events with a larger id (polling)")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> dict[str, Any]:
    """Events in the order they happened; poll with `after` = the last id you saw."""
    with rt.db.read() as s:
        incident = incidents.get_or_raise(s, number=number)
        events = [
            views.event(ev) for ev in timeline.events(s, incident.id, after_id=after, limit=limit)
        ]
    return {
        "incident": number,
        "events": events,
        "last_id": events[-1]["id"] if events else after,
    }


@router.get("/{number}/comms/{template}")
def preview_update(
    rt: RuntimeDep,
    who: Viewer,
    number: Number,
    template: Annotated[str, Path(max_length=40)],
    message: Annotated[str, Query(max_length=comms.MAX_MESSAGE)] = "",
) -> dict[str, Any]:
    """Render a communications template for this incident without sending or recording it."""
    with rt.db.read() as s:
        incident = incidents.get_or_raise(s, number=number)
        rendered = comms.render(
            rt.config, incident, template, now=rt.now(), message=message, redactor=rt.redactor
        )
    return {"incident": number, "template": rendered.template.value, "body": rendered.body}


@router.post("/{number}/updates", status_code=201)
def send_update(
    rt: RuntimeDep, who: Responder, _json: Json, number: Number, body: UpdateIn
) -> dict[str, Any]:
    """Render a template and record it on the timeline as sent.

    With `public: true` (commander) the text is also posted to the status page;
    an incident not yet there needs `public_title` (its internal title never
    goes public).
    """
    if body.public and not who.allows(Role.COMMANDER):
        raise PermissionDenied(
            f"public updates need the commander role (you are {who.role.value})", field="public"
        )
    now = rt.now()
    with rt.db.transaction() as s:
        incident = incidents.get_or_raise(s, number=number, for_update=True)
        rendered = comms.render(
            rt.config, incident, body.template, now=now, message=body.message, redactor=rt.redactor
        )
        event = comms.record_update(
            s, incident, rendered, actor=who.name, now=now, public=body.public, redactor=rt.redactor
        )
        public_event_id = None
        if body.public:
            if body.public_title is not None:
                statuspage.publish(
                    s,
                    incident,
                    config=rt.config,
                    public_title=body.public_title,
                    components=incident.components or [],
                    actor=who.name,
                    now=now,
                    redactor=rt.redactor,
                )
            public_event = statuspage.post_update(
                s,
                incident,
                status=incident.status,
                text=rendered.body[: statuspage.MAX_PUBLIC_TEXT],
                actor=who.name,
                now=now,
                redactor=rt.redactor,
            )
            public_event_id = public_event.id
        web_audit.incident_action(
            s,
            rt,
            who,
            "incident.update",
            incident,
            template=rendered.template.value,
            public=body.public,
            event=event.id,
        )
        result = views.event(event)
    result["public_event_id"] = public_event_id
    return result
