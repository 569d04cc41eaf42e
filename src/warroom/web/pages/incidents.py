"""Incident pages: list with filters, declare, the incident page and its actions.

Every action is one transaction: the service call, its audit entry and the
jobs it causes commit together, then the browser is sent back to the page
(post/redirect/get), where the timeline shows what happened.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from warroom.alerts.models import Alert
from warroom.auth.models import Role
from warroom.auth.service import Principal
from warroom.core.errors import InvalidInput, NotFound, PermissionDenied, WarroomError
from warroom.core.logging import get_logger
from warroom.incidents import comms, policy, timeline
from warroom.incidents import service as incidents
from warroom.incidents.models import Incident, Status
from warroom.jobs.runtime import Runtime
from warroom.statuspage import service as statuspage
from warroom.web import audit as web_audit
from warroom.web.deps import Commander, Responder, RuntimeDep, Viewer
from warroom.web.pages import common, runbooks
from warroom.web.pages.common import CsrfForm, field

log = get_logger("warroom.web.incidents")
router = APIRouter()
PAGE_SIZE = 50
STATUSES = [s.value for s in Status]
ROLES = ("commander", "communications", "scribe", "responder")


def _audit(
    s: Session, rt: Runtime, who: Principal, action: str, incident: Incident, **detail: Any
) -> None:
    web_audit.incident_action(s, rt, who, action, incident, via="web", **detail)


def _back(number: int, anchor: str = "timeline") -> Response:
    return common.see_other(f"/incidents/{number}#{anchor}")


@router.get("/incidents")
def list_page(
    request: Request,
    rt: RuntimeDep,
    _viewer: Viewer,
    q: str = "",
    severity: str = "",
    status: str = "",
    service: str = "",
    state: str = "open",
    page: int = 1,
) -> Response:
    if len(q) > 200 or len(service) > 100:
        raise InvalidInput("search text too long", field="q")
    if status and status not in STATUSES:
        raise InvalidInput(
            f"unknown status {status!r}", field="status", hint="use " + ", ".join(STATUSES)
        )
    if state not in ("open", "all"):
        raise InvalidInput("state must be open or all", field="state")
    page = max(1, min(page, 10_000))
    with rt.db.read() as s:
        rows, total = incidents.list_incidents(
            s,
            open_only=state == "open" and not status,
            severity=severity or None,
            status=status or None,
            service=service or None,
            query=q or None,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
    return common.render(
        request,
        "incidents.html",
        {
            "rows": rows,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "filters": {
                "q": q,
                "severity": severity,
                "status": status,
                "service": service,
                "state": state,
            },
            "severities": policy.SEVERITIES,
            "statuses": STATUSES,
        },
    )


@router.get("/incidents/new")
def declare_form(request: Request, rt: RuntimeDep, _responder: Responder) -> Response:
    return common.render(
        request,
        "declare.html",
        {"severities": rt.config.severities, "runbooks": runbooks.catalogue(rt)},
    )


@router.post("/incidents")
def declare(rt: RuntimeDep, who: Responder, form: CsrfForm) -> Response:
    title = field(form, "title", limit=300)
    severity = field(form, "severity", limit=4)
    service = field(form, "service", required=False, limit=100)
    runbook = field(form, "runbook", required=False, limit=100)
    summary = field(form, "summary", required=False)
    if runbook:
        try:
            runbook = runbooks.get(rt, runbook).id
        except NotFound:
            raise InvalidInput(f"runbook {runbook!r} does not exist", field="runbook") from None
    now = rt.now()
    with rt.db.transaction() as s:
        incident = incidents.create(
            s,
            config=rt.config,
            title=title,
            severity=severity,
            actor=who.name,
            now=now,
            services=[service] if service else [],
            runbooks=[runbook] if runbook else [],
            summary=summary,
            redactor=rt.redactor,
        )
        _audit(s, rt, who, "incident.declare", incident, severity=incident.severity)
        number = incident.number
    return common.see_other(f"/incidents/{number}")


def _load(s: Session, number: int) -> Incident:
    return incidents.get_or_raise(s, number=number)


@router.get("/incidents/{number}")
def incident_page(request: Request, number: int, rt: RuntimeDep, _viewer: Viewer) -> Response:
    now = rt.now()
    with rt.db.read() as s:
        incident = _load(s, number)
        events = list(timeline.events(s, incident.id, limit=2000))
        alerts = list(
            s.scalars(
                select(Alert).where(Alert.incident_id == incident.id).order_by(Alert.first_seen)
            )
        )
        sev = policy.policy(rt.config, incident.severity)
    book = runbooks.for_incident(rt, incident.runbooks)
    draft = ""
    if incident.is_public:
        # start the public update from the status-page template; the person edits it
        try:
            draft = comms.render(
                rt.config, incident, "status_page", now=now, redactor=rt.redactor
            ).body.strip()
        except WarroomError as exc:
            draft = ""
            log.warning("status_template_failed", incident=number, error=exc.message)
    public_updates = [e for e in events if e.kind == statuspage.UPDATE_KIND and e.public]
    return common.render(
        request,
        "incident.html",
        {
            "incident": incident,
            "events": events,
            "last_event_id": events[-1].id if events else 0,
            "alerts": alerts,
            "sev_policy": sev,
            "severities": rt.config.severities,
            "statuses": STATUSES,
            "transitions": sorted(incidents.TRANSITIONS[incident.status]),
            "roles": ROLES,
            "people": rt.config.people,
            "war_room": rt.config.war_room,
            "contacts": rt.config.contacts,
            "templates": _template_names(),
            "components": rt.config.status_page.components,
            "component_states": [st for st in statuspage.State],
            "public_updates": public_updates,
            "public_draft": draft,
            "runbook": book,
            "now": now,
        },
    )


def _template_names() -> list[str]:
    return [t.value for t in comms.Template]


@router.post("/incidents/{number}/ack")
def ack(number: int, rt: RuntimeDep, who: Responder, form: CsrfForm) -> Response:
    now = rt.now()
    with rt.db.transaction() as s:
        incident = _load(s, number)
        if incidents.acknowledge(s, incident, actor=who.name, now=now, via="web"):
            _audit(s, rt, who, "incident.ack", incident)
    return _back(number, "top")


@router.post("/incidents/{number}/status")
def set_status(number: int, rt: RuntimeDep, who: Responder, form: CsrfForm) -> Response:
    status = field(form, "status", limit=20)
    text = field(form, "text", required=False, limit=2000)
    if status == Status.RESOLVED and not who.allows(Role.COMMANDER):
        raise PermissionDenied("resolving an incident needs the commander role")
    with rt.db.transaction() as s:
        incident = _load(s, number)
        old = incident.status
        incidents.set_status(s, incident, status=status, actor=who.name, now=rt.now(), text=text)
        _audit(s, rt, who, "incident.status", incident, old=old, new=status)
    return _back(number)


@router.post("/incidents/{number}/severity")
def set_severity(number: int, rt: RuntimeDep, who: Commander, form: CsrfForm) -> Response:
    severity = field(form, "severity", limit=4)
    with rt.db.transaction() as s:
        incident = _load(s, number)
        old = incident.severity
        incidents.set_severity(
            s, incident, config=rt.config, severity=severity, actor=who.name, now=rt.now()
        )
        _audit(s, rt, who, "incident.severity", incident, old=old, new=incident.severity)
    return _back(number)


@router.post("/incidents/{number}/roles")
def set_role(number: int, rt: RuntimeDep, who: Responder, form: CsrfForm) -> Response:
    role = field(form, "role", limit=30)
    person = field(form, "person", required=False, limit=100) or None
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}", field="role", hint="use " + ", ".join(ROLES))
    with rt.db.transaction() as s:
        incident = _load(s, number)
        incidents.set_role(s, incident, role=role, person=person, actor=who.name, now=rt.now())
        _audit(s, rt, who, "incident.role", incident, role=role, person=person)
    return _back(number)


@router.post("/incidents/{number}/notes")
def add_note(number: int, rt: RuntimeDep, who: Responder, form: CsrfForm) -> Response:
    text = field(form, "text")
    with rt.db.transaction() as s:
        incident = _load(s, number)
        incidents.add_note(
            s, incident, text=text, actor=who.name, now=rt.now(), redactor=rt.redactor
        )
        _audit(s, rt, who, "incident.note", incident)
    return _back(number)


@router.post("/incidents/{number}/updates")
def post_update(number: int, rt: RuntimeDep, who: Responder, form: CsrfForm) -> Response:
    """Render a communications template and record it; a status-page update also goes public."""
    template = field(form, "template", limit=50)
    message = field(form, "message", required=False, limit=5000)
    now = rt.now()
    with rt.db.transaction() as s:
        incident = _load(s, number)
        rendered = comms.render(
            rt.config, incident, template, now=now, message=message, redactor=rt.redactor
        )
        public = rendered.template.value == "status_page" and incident.is_public
        if public and not who.allows(Role.COMMANDER):
            raise PermissionDenied("posting to the public status page needs the commander role")
        comms.record_update(
            s, incident, rendered, actor=who.name, now=now, public=public, redactor=rt.redactor
        )
        if public:
            statuspage.post_update(
                s,
                incident,
                status=incident.status,
                text=rendered.body,
                actor=who.name,
                now=now,
                redactor=rt.redactor,
            )
        _audit(
            s, rt, who, "incident.update", incident, template=rendered.template.value, public=public
        )
    return _back(number)


@router.post("/incidents/{number}/publish")
def publish(number: int, rt: RuntimeDep, who: Commander, form: CsrfForm) -> Response:
    title = field(form, "public_title", limit=statuspage.MAX_PUBLIC_TITLE)
    components = [c for c in form.getlist("components") if isinstance(c, str)]
    with rt.db.transaction() as s:
        incident = _load(s, number)
        statuspage.publish(
            s,
            incident,
            config=rt.config,
            public_title=title,
            components=components,
            actor=who.name,
            now=rt.now(),
            redactor=rt.redactor,
        )
        _audit(s, rt, who, "statuspage.publish", incident, public_title=title)
    return _back(number, "public")


@router.post("/incidents/{number}/public-updates")
def public_update(number: int, rt: RuntimeDep, who: Commander, form: CsrfForm) -> Response:
    text = field(form, "text", limit=statuspage.MAX_PUBLIC_TEXT)
    status = field(form, "status", limit=20)
    with rt.db.transaction() as s:
        incident = _load(s, number)
        statuspage.post_update(
            s,
            incident,
            status=status,
            text=text,
            actor=who.name,
            now=rt.now(),
            redactor=rt.redactor,
        )
        _audit(s, rt, who, "statuspage.update", incident, status=status)
    return _back(number, "public")
