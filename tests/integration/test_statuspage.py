"""The public status page: component states, publishing, public updates, and nothing private.

Service calls on SQLite and PostgreSQL, then the public HTML, JSON and Atom
documents over HTTP (in process) with private markers planted everywhere a
responder writes: internal title, summary, notes, alert labels, roles.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from warroom.alerts.models import Alert
from warroom.auth import service as auth
from warroom.core.clock import FrozenClock
from warroom.core.errors import InvalidInput
from warroom.incidents import service as incidents
from warroom.jobs.runtime import Runtime
from warroom.statuspage import service as statuspage
from warroom.web.app import create_app

pytestmark = pytest.mark.integration

CONFIG: dict[str, Any] = {
    "status_page": {"title": "Example status", "components": ["API", "Web app", "Database"]}
}
SECRET_MARK = "PRIVATE-7f3a"


def _incident(rt: Runtime, title: str, **kwargs: Any) -> int:
    with rt.db.transaction() as s:
        inc = incidents.create(
            s, config=rt.config, title=title, severity="P1", actor="casey", now=rt.now(), **kwargs
        )
        return inc.number


def test_component_states_default_to_operational_and_reject_unknowns(
    db_url: str, make_runtime: Callable[..., Runtime], clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, CONFIG, clock)
    with rt.db.transaction() as s:
        assert [c.state for c in statuspage.components(s, config=rt.config)] == [
            statuspage.State.OPERATIONAL
        ] * 3
        statuspage.set_component(
            s, config=rt.config, name="Database", state="major outage", actor="casey", now=rt.now()
        )
        with pytest.raises(InvalidInput, match="unknown status-page component 'Moon'"):
            statuspage.set_component(
                s, config=rt.config, name="Moon", state="degraded", actor="casey", now=rt.now()
            )
        with pytest.raises(InvalidInput, match="unknown component state 'on fire'"):
            statuspage.set_component(
                s, config=rt.config, name="API", state="on fire", actor="casey", now=rt.now()
            )
    with rt.db.read() as s:
        view = statuspage.public_view(s, config=rt.config, now=rt.now())
    assert [(c.name, c.state.value) for c in view.components] == [
        ("API", "operational"),
        ("Web app", "operational"),
        ("Database", "major_outage"),
    ]
    assert view.overall is statuspage.State.MAJOR_OUTAGE


def test_only_published_incidents_and_public_updates_appear(
    db_url: str, make_runtime: Callable[..., Runtime], clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, CONFIG, clock)
    hidden = _incident(rt, f"{SECRET_MARK} hidden incident")
    drill = _incident(rt, "drill", is_drill=True)
    shown = _incident(rt, f"{SECRET_MARK} internal title", summary=f"{SECRET_MARK} summary")
    with rt.db.transaction() as s:
        inc = incidents.get_or_raise(s, number=shown)
        with pytest.raises(InvalidInput, match="not on the status page"):
            statuspage.post_update(
                s, inc, status="investigating", text="too early", actor="casey", now=rt.now()
            )
        statuspage.publish(
            s, inc, config=rt.config, public_title="API errors", components=["API"],
            actor="casey", now=rt.now(),
        )  # fmt: skip
        incidents.add_note(s, inc, text=f"{SECRET_MARK} note", actor="casey", now=rt.now())
        clock.advance(timedelta(minutes=5))
        statuspage.post_update(
            s, inc, status="identified", text="We found the cause.", actor="casey", now=rt.now()
        )
        d = incidents.get_or_raise(s, number=drill)
        statuspage.publish(
            s, d, config=rt.config, public_title="Drill", actor="casey", now=rt.now()
        )
    with rt.db.read() as s:
        view = statuspage.public_view(s, config=rt.config, now=rt.now())
    assert [i.number for i in view.incidents] == [shown]
    only = view.incidents[0]
    assert (only.title, only.status, only.components) == ("API errors", "identified", ["API"])
    assert [u.text for u in only.updates] == ["We found the cause."]
    # every component is green, but an open public incident must not read "all operational"
    assert view.overall is statuspage.State.DEGRADED
    assert SECRET_MARK not in json.dumps(view.as_dict())
    assert hidden not in [i.number for i in view.incidents]


def test_resolved_incidents_stay_listed_for_two_weeks_then_leave(
    db_url: str, make_runtime: Callable[..., Runtime], clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, CONFIG, clock)
    number = _incident(rt, "x")
    with rt.db.transaction() as s:
        inc = incidents.get_or_raise(s, number=number)
        statuspage.publish(s, inc, config=rt.config, public_title="Outage", actor="c", now=rt.now())
        incidents.resolve(s, inc, actor="c", now=rt.now())
    clock.advance(timedelta(days=13))
    with rt.db.read() as s:
        view = statuspage.public_view(s, config=rt.config, now=rt.now())
    assert [(i.status, i.current) for i in view.incidents] == [("resolved", False)]
    assert view.overall is statuspage.State.OPERATIONAL
    clock.advance(timedelta(days=2))
    with rt.db.read() as s:
        assert statuspage.public_view(s, config=rt.config, now=rt.now()).incidents == []


def _request(app: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as c:
            return await c.request(method, url, **kwargs)

    return asyncio.run(go())


def test_public_documents_expose_nothing_private(
    db_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(db_url, CONFIG)
    number = _incident(
        rt, f"{SECRET_MARK} db primary lost", summary=f"{SECRET_MARK}-summary",
        customer_impact=f"{SECRET_MARK}-impact", commander="alice",
    )  # fmt: skip
    with rt.db.transaction() as s:
        inc = incidents.get_or_raise(s, number=number)
        incidents.add_note(s, inc, text=f"{SECRET_MARK}-note", actor="casey", now=rt.now())
        incidents.set_role(s, inc, role="scribe", person="bob", actor="casey", now=rt.now())
        s.add(
            Alert(
                integration_id="am", fingerprint="f1", status="firing",
                name=f"{SECRET_MARK}-alert", labels={"host": f"{SECRET_MARK}-host"},
                first_seen=rt.now(), last_seen=rt.now(), incident_id=inc.id,
            )
        )  # fmt: skip
        statuspage.publish(
            s, inc, config=rt.config, public_title="Database trouble",
            components=["Database"], actor="casey", now=rt.now(),
        )  # fmt: skip
        statuspage.post_update(
            s, inc, status="investigating", text="We are looking into it.", actor="casey",
            now=rt.now(),
        )  # fmt: skip
    app = create_app(rt)
    html = _request(app, "GET", "/status")
    data = _request(app, "GET", "/status.json")
    feed = _request(app, "GET", "/status/feed.atom")
    for r in (html, data, feed):
        assert r.status_code == 200
        for private in (SECRET_MARK, "alice", "bob", "casey", "P1"):
            assert private not in r.text, (r.url, private)
        assert "Database trouble" in r.text and "We are looking into it." in r.text
    body = data.json()
    assert set(body) == {"title", "overall", "updated_at", "components", "incidents"}
    assert set(body["incidents"][0]) == {
        "id", "title", "status", "current", "started_at", "resolved_at", "components", "updates",
    }  # fmt: skip
    assert set(body["incidents"][0]["updates"][0]) == {"at", "status", "text"}
    root = ElementTree.fromstring(feed.content)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = root.findall("a:entry", ns)
    assert [e.findtext("a:content", namespaces=ns) for e in entries] == ["We are looking into it."]
    assert feed.headers["content-type"].startswith("application/atom+xml")
    assert html.headers["cache-control"] == "public, max-age=15"


def test_status_api_needs_a_commander_and_validates_input(
    db_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(db_url, CONFIG)
    tokens = {}
    with rt.db.transaction() as s:
        for name, role in (("cmdr", "commander"), ("resp", "responder")):
            user = auth.create_user(s, name=name, role=role, now=rt.now())
            tokens[name] = auth.create_token(s, user=user, name="t", now=rt.now())
    number = _incident(rt, "internal")
    app = create_app(rt)

    def call(who: str, method: str, url: str, body: Any) -> httpx.Response:
        return _request(
            app, method, url, json=body, headers={"Authorization": f"Bearer {tokens[who]}"}
        )

    assert (
        call("resp", "PUT", "/api/v1/status/components/API", {"state": "degraded"}).status_code
        == 403
    )
    r = call("cmdr", "PUT", "/api/v1/status/components/API", {"state": "degraded"})
    assert r.status_code == 200 and r.json()["state"] == "degraded"
    r = call("cmdr", "PUT", "/api/v1/status/components/Moon", {"state": "degraded"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "component"
    r = call(
        "cmdr",
        "POST",
        f"/api/v1/status/incidents/{number}/updates",
        {"status": "identified", "text": "x"},
    )
    assert r.status_code == 422 and "not on the status page" in r.json()["error"]["message"]
    r = call(
        "cmdr",
        "POST",
        f"/api/v1/status/incidents/{number}",
        {"public_title": "API slow", "components": ["API"]},
    )
    assert r.status_code == 200
    r = call(
        "cmdr",
        "POST",
        f"/api/v1/status/incidents/{number}/updates",
        {"status": "identified", "text": "Fix coming."},
    )
    assert r.status_code == 201
    r = call(
        "cmdr",
        "POST",
        f"/api/v1/status/incidents/{number}/updates",
        {"status": "asleep", "text": "x"},
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "status"
    r = call("cmdr", "POST", "/api/v1/status/incidents/999", {"public_title": "x"})
    assert r.status_code == 404
    public = _request(app, "GET", "/status.json").json()
    assert public["incidents"][0]["updates"][0]["text"] == "Fix coming."
    assert public["components"][0] == {
        "name": "API", "state": "degraded", "updated_at": public["components"][0]["updated_at"],
    }  # fmt: skip
