"""Public status page (`/status`, `/status.json`, `/status/feed.atom`) and its admin API.

The public routes need no login and show only `statuspage.public_view`:
component states, public titles and public updates. They are cacheable for a
few seconds so a traffic spike during an outage does not become a second one.
"""

from __future__ import annotations

from typing import Annotated, Any
from xml.sax.saxutils import escape as xml_escape

from fastapi import APIRouter, Body, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from warroom.core.clock import as_utc
from warroom.core.errors import InvalidInput
from warroom.incidents import service as incidents
from warroom.statuspage import service as statuspage
from warroom.store import audit
from warroom.web import audit as web_audit
from warroom.web.deps import Commander, RuntimeDep, Viewer, public

router = APIRouter(tags=["status page"])
PUBLIC_CACHE = "public, max-age=15"

public("GET", "/status")
public("GET", "/status.json")
public("GET", "/status/feed.atom")


def _templates(request: Request) -> Jinja2Templates | None:
    value = getattr(request.app.state, "templates", None)
    return value if isinstance(value, Jinja2Templates) else None


@router.get("/status", response_class=HTMLResponse, include_in_schema=False)
def status_html(request: Request, rt: RuntimeDep) -> Response:
    with rt.db.read() as s:
        view = statuspage.public_view(s, config=rt.config, now=rt.now())
    templates = _templates(request)
    if templates is None:  # a build without the web UI still answers, as JSON
        return JSONResponse(view.as_dict(), headers={"Cache-Control": PUBLIC_CACHE})
    return templates.TemplateResponse(
        request, "status.html", {"view": view}, headers={"Cache-Control": PUBLIC_CACHE}
    )


@router.get("/status.json")
def status_json(rt: RuntimeDep) -> JSONResponse:
    """Components, overall state and public incidents with their public updates."""
    with rt.db.read() as s:
        view = statuspage.public_view(s, config=rt.config, now=rt.now())
    return JSONResponse(view.as_dict(), headers={"Cache-Control": PUBLIC_CACHE})


def _atom(rt: RuntimeDep, view: statuspage.PublicView) -> str:
    base = (rt.settings.public_url or "").rstrip("/")
    updated = as_utc(view.updated_at or rt.now()).isoformat()
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<title>{xml_escape(view.title)}</title>",
        f"<id>{xml_escape(base)}/status</id>",
        f'<link rel="alternate" href="{xml_escape(base)}/status"/>',
        f'<link rel="self" href="{xml_escape(base)}/status/feed.atom"/>',
        f"<updated>{updated}</updated>",
    ]
    for inc in view.incidents:
        for n, upd in enumerate(inc.updates):
            at = as_utc(upd.at).isoformat()
            parts += [
                "<entry>",
                f"<title>{xml_escape(inc.title)}: {xml_escape(upd.status)}</title>",
                f"<id>{xml_escape(base)}/status#incident-{inc.number}-{len(inc.updates) - n}</id>",
                f'<link rel="alternate" href="{xml_escape(base)}/status"/>',
                f"<updated>{at}</updated>",
                f"<published>{at}</published>",
                f'<content type="text">{xml_escape(upd.text)}</content>',
                "</entry>",
            ]
    parts.append("</feed>")
    return "\n".join(parts) + "\n"


@router.get("/status/feed.atom")
def status_feed(rt: RuntimeDep) -> Response:
    """Atom feed: one entry per public update."""
    with rt.db.read() as s:
        view = statuspage.public_view(s, config=rt.config, now=rt.now())
    return Response(
        _atom(rt, view),
        media_type="application/atom+xml; charset=utf-8",
        headers={"Cache-Control": PUBLIC_CACHE},
    )


class ComponentUpdate(BaseModel):
    state: str = Field(max_length=30)


class PublishBody(BaseModel):
    public_title: str = Field(max_length=statuspage.MAX_PUBLIC_TITLE)
    components: list[str] = Field(default_factory=list, max_length=50)


class UpdateBody(BaseModel):
    status: str = Field(max_length=20)
    text: str = Field(max_length=statuspage.MAX_PUBLIC_TEXT)


@router.get("/api/v1/status/components")
def list_components(rt: RuntimeDep, _viewer: Viewer) -> dict[str, Any]:
    with rt.db.read() as s:
        comps = statuspage.components(s, config=rt.config)
    return {
        "components": [
            {
                "name": c.name,
                "state": c.state.value,
                "updated_at": as_utc(c.updated_at).isoformat() if c.updated_at else None,
            }
            for c in comps
        ]
    }


@router.put("/api/v1/status/components/{name}")
def set_component(
    name: str, body: Annotated[ComponentUpdate, Body()], rt: RuntimeDep, who: Commander
) -> dict[str, Any]:
    now = rt.now()
    with rt.db.transaction() as s:
        comp = statuspage.set_component(
            s, config=rt.config, name=name, state=body.state, actor=who.name, now=now
        )
        audit.record(
            s,
            at=now,
            actor=who.name,
            action="statuspage.component",
            target=f"component:{name}",
            detail={"state": comp.state.value},
        )
    return {"name": comp.name, "state": comp.state.value, "updated_at": now.isoformat()}


@router.post("/api/v1/status/incidents/{number}")
def publish_incident(
    number: int, body: Annotated[PublishBody, Body()], rt: RuntimeDep, who: Commander
) -> dict[str, Any]:
    """Show an incident on the public page under a public title."""
    now = rt.now()
    with rt.db.transaction() as s:
        incident = incidents.get_or_raise(s, number=number)
        statuspage.publish(
            s,
            incident,
            config=rt.config,
            public_title=body.public_title,
            components=body.components,
            actor=who.name,
            now=now,
            redactor=rt.redactor,
        )
        web_audit.incident_action(
            s, rt, who, "statuspage.publish", incident, public_title=incident.public_title
        )
        return {
            "number": number,
            "public_title": incident.public_title,
            "components": incident.components,
        }


@router.post("/api/v1/status/incidents/{number}/updates", status_code=201)
def post_public_update(
    number: int, body: Annotated[UpdateBody, Body()], rt: RuntimeDep, who: Commander
) -> dict[str, Any]:
    """Post a public update to a published incident."""
    now = rt.now()
    with rt.db.transaction() as s:
        incident = incidents.get_or_raise(s, number=number)
        if len(body.text) > statuspage.MAX_PUBLIC_TEXT:
            raise InvalidInput("text too long", field="text")
        event = statuspage.post_update(
            s,
            incident,
            status=body.status,
            text=body.text,
            actor=who.name,
            now=now,
            redactor=rt.redactor,
        )
        web_audit.incident_action(s, rt, who, "statuspage.update", incident, status=body.status)
        return {
            "number": number,
            "id": event.id,
            "status": body.status,
            "text": event.text,
            "at": now.isoformat(),
        }
