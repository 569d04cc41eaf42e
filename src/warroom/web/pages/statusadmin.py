"""The responders' view of the status page: set component states, see what is public."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from warroom.auth.models import Role
from warroom.statuspage import service as statuspage
from warroom.store import audit
from warroom.web.deps import Commander, RuntimeDep, Viewer
from warroom.web.pages import common
from warroom.web.pages.common import CsrfForm, field

router = APIRouter()


@router.get("/statuspage")
def statuspage_page(request: Request, rt: RuntimeDep, who: Viewer) -> Response:
    with rt.db.read() as s:
        view = statuspage.public_view(s, config=rt.config, now=rt.now())
    return common.render(
        request,
        "statuspage_admin.html",
        {"view": view, "states": list(statuspage.State), "can_edit": who.allows(Role.COMMANDER)},
    )


@router.post("/statuspage/components")
def set_component(rt: RuntimeDep, who: Commander, form: CsrfForm) -> Response:
    name = field(form, "component", limit=100)
    state = field(form, "state", limit=30)
    now = rt.now()
    with rt.db.transaction() as s:
        comp = statuspage.set_component(
            s, config=rt.config, name=name, state=state, actor=who.name, now=now
        )
        audit.record(
            s,
            at=now,
            actor=who.name,
            action="statuspage.component",
            target=f"component:{name}",
            detail={"state": comp.state.value, "via": "web"},
        )
    return common.see_other("/statuspage")
