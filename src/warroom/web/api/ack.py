"""Acknowledge from a page: GET shows what will be acknowledged, only POST acknowledges.

Mail scanners and chat unfurlers fetch links, so a GET must change nothing.
The signed token names one incident and expires (`policies.ack_link_ttl`);
no login is needed, and the token is useless for any other incident or action.
Plain server-rendered HTML: readable on a phone, every value escaped, no script.
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from warroom.core.errors import Unauthenticated
from warroom.core.security import unsign
from warroom.incidents import service as incidents
from warroom.incidents.models import Incident, Status
from warroom.jobs.runtime import Runtime
from warroom.store import audit
from warroom.web.deps import RuntimeDep, public

router = APIRouter(tags=["ack"], include_in_schema=True)
MAX_TOKEN = 2048

public("GET", "/ack/{token}")
public("POST", "/ack/{token}")


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{escape(title)} · warroom</title></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(
        html,
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _verify(rt: Runtime, token: str) -> dict[str, Any]:
    if len(token) > MAX_TOKEN:
        raise Unauthenticated("the link is malformed")
    payload = unsign(token, key=rt.settings.secret_key, purpose="ack", now=rt.now())
    if not isinstance(payload.get("i"), int) or not isinstance(payload.get("n"), int):
        raise Unauthenticated("the link is malformed")
    return payload


def _refused(exc: Unauthenticated) -> HTMLResponse:
    expired = "expired" in exc.message
    return _page(
        "Link expired" if expired else "Link not valid",
        f"<p>{escape(exc.message)}.</p><p>Acknowledge in the web UI, with "
        "<code>warroom incident ack N</code>, or from a newer page.</p>",
        status=410 if expired else 401,
    )


def _load(rt: Runtime, s: Any, payload: dict[str, Any]) -> Incident | None:
    incident = incidents.lock(s, incident_id=int(payload["i"]))
    if incident is None or incident.number != payload["n"]:
        return None
    return incident


def _summary(incident: Incident) -> str:
    return (
        f"<p><strong>#{incident.number} · {escape(incident.severity)}</strong></p>"
        f"<p>{escape(incident.title)}</p>"
        f"<p>Status: {escape(incident.status)}</p>"
    )


@router.get("/ack/{token}", response_class=HTMLResponse)
def ack_confirm(token: str, rt: RuntimeDep) -> HTMLResponse:
    """Show the incident and an Acknowledge button; changes nothing."""
    try:
        payload = _verify(rt, token)
    except Unauthenticated as exc:
        return _refused(exc)
    with rt.db.read() as s:
        incident = _load(rt, s, payload)
        if incident is None:
            return _page("Incident not found", "<p>This incident no longer exists.</p>", 404)
        if incident.acknowledged_at is not None:
            who = escape(incident.acknowledged_by or "someone")
            return _page(
                "Already acknowledged",
                _summary(incident) + f"<p>Acknowledged by {who} at "
                f"{escape(incident.acknowledged_at.isoformat())}.</p>",
            )
        if incident.status == Status.RESOLVED:
            return _page("Already resolved", _summary(incident))
        form = (
            f'<form method="post" action="/ack/{escape(token)}">'
            f'<button type="submit">Acknowledge #{incident.number}</button></form>'
        )
        return _page(f"Acknowledge incident #{incident.number}?", _summary(incident) + form)


@router.post("/ack/{token}", response_class=HTMLResponse)
def ack_do(token: str, rt: RuntimeDep) -> HTMLResponse:
    """Acknowledge the one incident the signed link names; stops further escalation."""
    try:
        payload = _verify(rt, token)
    except Unauthenticated as exc:
        return _refused(exc)
    who = str(payload.get("who") or "ack-link")[:100]
    now = rt.now()
    with rt.db.transaction() as s:
        incident = _load(rt, s, payload)
        if incident is None:
            return _page("Incident not found", "<p>This incident no longer exists.</p>", 404)
        if incident.status == Status.RESOLVED:
            return _page("Already resolved", _summary(incident), 409)
        done = incidents.acknowledge(s, incident, actor=who, now=now, via="link")
        if done:
            audit.record(
                s,
                at=now,
                actor=who,
                action="incident.ack",
                target=f"incident:{incident.number}",
                detail={"via": "link"},
            )
        text = "Acknowledged. Further escalation is stopped." if done else "Already acknowledged."
        return _page(f"Incident #{incident.number}", _summary(incident) + f"<p>{text}</p>")
