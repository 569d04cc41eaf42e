"""Postmortem, action item and drill API.

POST|GET|PATCH /api/v1/incidents/{n}/postmortem   generate | read (JSON or text/markdown) | edit draft
POST /api/v1/incidents/{n}/postmortem/publish
GET|POST /api/v1/actions        list (?overdue, ?open, ?incident) | add
GET|PATCH /api/v1/actions/{id}, POST /api/v1/actions/{id}/done
GET|POST /api/v1/drills         list with what is due | start
GET /api/v1/drills/{id}, POST /api/v1/drills/{id}/finish
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from warroom.core.durations import parse_duration
from warroom.core.errors import InvalidInput
from warroom.incidents import service as incidents
from warroom.incidents.models import Incident
from warroom.jobs.runtime import Runtime
from warroom.postmortems import actions, drills
from warroom.postmortems import service as postmortems
from warroom.postmortems.models import ActionItem, Drill
from warroom.postmortems.runbookrefs import RunbookInfo, find, load_catalog
from warroom.web.deps import Commander, Responder, RuntimeDep, Viewer

router = APIRouter(prefix="/api/v1", tags=["postmortems"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PostmortemCreate(_Body):
    regenerate: bool = False


class TimelineEntry(_Body):
    at: str
    text: str = Field(max_length=2000)
    kind: str = "edited"


class PostmortemUpdate(_Body):
    title: str | None = Field(None, max_length=300)
    summary: str | None = None
    impact: str | None = None
    root_cause: str | None = None
    resolution: str | None = None
    lessons: str | None = None
    timeline: list[TimelineEntry] | None = Field(None, max_length=postmortems.MAX_TIMELINE)


class ActionCreate(_Body):
    title: str = Field(max_length=300)
    kind: str = "preventive"
    owner: str = Field("", max_length=100)
    due_date: date | None = None
    incident: int | None = None
    runbook: str | None = Field(None, max_length=100)


class ActionUpdate(_Body):
    title: str | None = Field(None, max_length=300)
    owner: str | None = Field(None, max_length=100)
    due_date: date | None = None
    state: str | None = None
    reason: str = Field("", max_length=2000)


class ActionDone(_Body):
    reason: str = Field("", max_length=2000)


class DrillStart(_Body):
    runbook: str = Field(max_length=100)
    page: bool = False
    severity: str | None = None


class DrillFinish(_Body):
    # seconds, or a duration such as "4m30s"; RTO defaults to the time since the start
    rto: float | str | None = None
    rpo: float | str | None = None
    failed: list[str] = Field(default_factory=list, max_length=drills.MAX_FAILURES)
    notes: str = Field("", max_length=20_000)


def _catalog(rt: Runtime) -> list[RunbookInfo]:
    return load_catalog(rt.settings.runbooks_path)


def _wants_markdown(accept: str | None, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt in ("md", "markdown")
    return bool(accept) and "text/markdown" in (accept or "")


def _document(rt: Runtime, s: Any, incident: Incident, markdown: bool) -> Response | dict[str, Any]:
    pm = postmortems.get_or_raise(s, incident=incident)
    items = postmortems.action_items(s, incident=incident)
    now = rt.now()
    if markdown:
        text = postmortems.to_markdown(
            pm, incident=incident, items=items, config=rt.config, now=now, redactor=rt.redactor
        )
        return Response(
            text,
            media_type="text/markdown; charset=utf-8",
            headers={
                "Content-Disposition": (f'inline; filename="postmortem-{incident.number}.md"')
            },
        )
    data = postmortems.as_dict(pm, incident=incident, items=items, now=now)
    redacted: dict[str, Any] = rt.redactor.redact_obj(data)  # type: ignore[assignment]
    return redacted


@router.post("/incidents/{number}/postmortem", status_code=201, response_model=None)
def create_postmortem(
    number: int, rt: RuntimeDep, p: Responder, body: PostmortemCreate | None = None
) -> dict[str, Any] | Response:
    """Write the first draft from the incident's record."""
    with rt.db.transaction() as s:
        incident = incidents.get_or_raise(s, number=number)
        postmortems.create(
            s,
            incident=incident,
            author=p.name,
            now=rt.now(),
            redactor=rt.redactor,
            regenerate=bool(body and body.regenerate),
        )
        return _document(rt, s, incident, markdown=False)


@router.get("/incidents/{number}/postmortem", response_model=None)
def read_postmortem(
    number: int,
    rt: RuntimeDep,
    _p: Viewer,
    accept: Annotated[str | None, Header()] = None,
    format: Annotated[Literal["json", "md", "markdown"] | None, Query()] = None,
) -> dict[str, Any] | Response:
    """The postmortem as JSON, or as Markdown with `Accept: text/markdown` (or ?format=md)."""
    with rt.db.read() as s:
        incident = incidents.get_or_raise(s, number=number)
        return _document(rt, s, incident, markdown=_wants_markdown(accept, format))


@router.patch("/incidents/{number}/postmortem", response_model=None)
def edit_postmortem(
    number: int, body: PostmortemUpdate, rt: RuntimeDep, p: Responder
) -> dict[str, Any] | Response:
    """Edit a draft (prose fields and the timeline)."""
    changes = body.model_dump(exclude_unset=True)
    with rt.db.transaction() as s:
        incident = incidents.get_or_raise(s, number=number)
        pm = postmortems.get_or_raise(s, incident=incident)
        postmortems.update(s, pm, changes=changes, actor=p.name, now=rt.now(), redactor=rt.redactor)
        return _document(rt, s, incident, markdown=False)


@router.post("/incidents/{number}/postmortem/publish", response_model=None)
def publish_postmortem(number: int, rt: RuntimeDep, p: Commander) -> dict[str, Any] | Response:
    """Publish: the document is frozen and reminders stop."""
    with rt.db.transaction() as s:
        incident = incidents.get_or_raise(s, number=number)
        pm = postmortems.get_or_raise(s, incident=incident)
        postmortems.publish(s, pm, incident=incident, actor=p.name, now=rt.now())
        return _document(rt, s, incident, markdown=False)


# ------------------------------------------------------------------ action items


def _numbers(s: Any, incident_ids: set[int | None]) -> dict[int, int]:
    ids = {i for i in incident_ids if i is not None}
    if not ids:
        return {}
    rows = s.execute(select(Incident.id, Incident.number).where(Incident.id.in_(ids))).all()
    return {int(i): int(n) for i, n in rows}


def _items_out(rt: Runtime, s: Any, items: list[ActionItem]) -> list[dict[str, Any]]:
    today = rt.now().date()
    numbers = _numbers(s, {i.incident_id for i in items})
    return [
        actions.as_dict(i, today=today, incident_number=numbers.get(i.incident_id or 0))
        for i in items
    ]


@router.get("/actions")
def list_actions(
    rt: RuntimeDep,
    _p: Viewer,
    overdue: bool = False,
    open_only: Annotated[bool, Query(alias="open")] = False,
    incident: int | None = None,
    owner: str | None = Query(None, max_length=100),
) -> dict[str, Any]:
    """Action items; `overdue=true` lists open items past their due date (oldest first)."""
    with rt.db.read() as s:
        if overdue:
            items = list(actions.overdue_actions(s, rt.now().date()))
        else:
            inc = incidents.get_or_raise(s, number=incident) if incident is not None else None
            items = list(actions.list_items(s, open_only=open_only, incident=inc, owner=owner))
        return {"items": _items_out(rt, s, items), "count": len(items)}


@router.post("/actions", status_code=201)
def add_action(body: ActionCreate, rt: RuntimeDep, p: Responder) -> dict[str, Any]:
    """Add an action item; a runbook_update item keeps the runbook's current file hash."""
    with rt.db.transaction() as s:
        inc = incidents.get_or_raise(s, number=body.incident) if body.incident else None
        item = actions.create(
            s,
            title=body.title,
            kind=body.kind,
            now=rt.now(),
            actor=p.name,
            incident=inc,
            owner=body.owner,
            due_date=body.due_date,
            runbook_id=body.runbook,
            catalog=_catalog(rt) if body.runbook else (),
            redactor=rt.redactor,
        )
        return _items_out(rt, s, [item])[0]


@router.get("/actions/{item_id}")
def get_action(item_id: int, rt: RuntimeDep, _p: Viewer) -> dict[str, Any]:
    with rt.db.read() as s:
        return _items_out(rt, s, [actions.get_or_raise(s, item_id)])[0]


@router.patch("/actions/{item_id}")
def edit_action(item_id: int, body: ActionUpdate, rt: RuntimeDep, p: Responder) -> dict[str, Any]:
    """Change title, owner, due date or state (open, in_progress, done, wontfix)."""
    with rt.db.transaction() as s:
        item = actions.get_or_raise(s, item_id)
        actions.update(
            s,
            item,
            now=rt.now(),
            actor=p.name,
            title=body.title,
            owner=body.owner,
            due_date=body.due_date,
            state=body.state,
            reason=body.reason,
        )
        return _items_out(rt, s, [item])[0]


@router.post("/actions/{item_id}/done")
def finish_action(
    item_id: int, rt: RuntimeDep, p: Responder, body: ActionDone | None = None
) -> dict[str, Any]:
    with rt.db.transaction() as s:
        item = actions.get_or_raise(s, item_id)
        actions.set_state(
            s, item, state="done", now=rt.now(), actor=p.name, reason=body.reason if body else ""
        )
        return _items_out(rt, s, [item])[0]


# ------------------------------------------------------------------ drills


def _drills_out(s: Any, rows: list[Drill]) -> list[dict[str, Any]]:
    numbers = _numbers(s, {d.incident_id for d in rows})
    return [drills.as_dict(d, incident_number=numbers.get(d.incident_id or 0)) for d in rows]


def _seconds(value: float | str | None, field: str) -> float | timedelta | None:
    if value is None or value == "":
        return None
    if isinstance(value, float | int):
        return float(value)
    try:
        return parse_duration(value, field=field)
    except OverflowError:
        raise InvalidInput(f"{field} must be between 0 and 30 days", field=field) from None


@router.get("/drills")
def list_drills(
    rt: RuntimeDep, _p: Viewer, runbook: str | None = Query(None, max_length=100)
) -> dict[str, Any]:
    """Drills (newest first) and, per runbook with `drill_every`, when the next one is due."""
    with rt.db.read() as s:
        rows = list(drills.list_drills(s, runbook_id=runbook))
        due = drills.drills_due(_catalog(rt), s, rt.now())
        return {"drills": _drills_out(s, rows), "due": [d.as_dict() for d in due]}


@router.post("/drills", status_code=201)
def start_drill(body: DrillStart, rt: RuntimeDep, p: Commander) -> dict[str, Any]:
    """Open a drill: an incident flagged as a drill, paging nobody unless `page` is true."""
    ref = find(_catalog(rt), body.runbook)
    with rt.db.transaction() as s:
        drill, _incident = drills.start(
            s,
            config=rt.config,
            runbook=ref,
            actor=p.name,
            now=rt.now(),
            page=body.page,
            severity=body.severity,
            redactor=rt.redactor,
        )
        return _drills_out(s, [drill])[0]


@router.get("/drills/{drill_id}")
def get_drill(drill_id: int, rt: RuntimeDep, _p: Viewer) -> dict[str, Any]:
    with rt.db.read() as s:
        return _drills_out(s, [drills.get_or_raise(s, drill_id)])[0]


@router.post("/drills/{drill_id}/finish")
def finish_drill(drill_id: int, body: DrillFinish, rt: RuntimeDep, p: Commander) -> dict[str, Any]:
    """Record RTO (default: measured since the start), RPO and what failed; resolves the incident."""
    rto = _seconds(body.rto, "rto")
    rpo = _seconds(body.rpo, "rpo")
    with rt.db.transaction() as s:
        drill = drills.get_or_raise(s, drill_id)
        drills.finish(
            s,
            drill,
            actor=p.name,
            now=rt.now(),
            rto=rto,
            rpo=rpo,
            failures=body.failed,
            notes=body.notes,
            redactor=rt.redactor,
        )
        return _drills_out(s, [drill])[0]
