"""Acceptance: a P1 opened by a real Alertmanager payload, worked through the API (ack, runbook run,
notes, status changes, resolution) yields a postmortem whose timeline is the incident's timeline."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from warroom.auth import service as auth
from warroom.core.clock import FrozenClock
from warroom.jobs.runtime import Runtime
from warroom.postmortems import markdown
from warroom.web.app import create_app

pytestmark = pytest.mark.integration

AM_TOKEN = "am-token-" + "p" * 24
T0 = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
RUNBOOK = """---
id: high-error-rate
title: High Error Rate
owner: devops-team
severity: P1
triggers:
  - alertname="HighErrorRate"
params:
  service: {default: api}
---

# High Error Rate

## Investigate

```bash {id=recent-errors}
echo "5xx in the last 5 minutes for {{ service }}: 1234"
```

## Mitigate

```bash {id=rollback}
echo "rolled back {{ service }} to the previous release"
```
"""
CONFIG: dict[str, Any] = {
    "integrations": [{"id": "prod-am", "type": "alertmanager", "token": AM_TOKEN}],
    "routes": [
        {"match": ['alertname="HighErrorRate"'], "severity": "P1", "runbook": "high-error-rate"}
    ],
}


class Api:
    """In-process HTTP against the real app (the ASGI transport, no sockets, no worker)."""

    def __init__(self, rt: Runtime, token: str) -> None:
        self.app = create_app(rt, None, run_worker=False)
        self.token = token

    def call(self, method: str, url: str, *, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", **kw.pop("headers", {})}

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                return await c.request(method, url, headers=headers, **kw)

        return asyncio.run(go())

    def ok(self, method: str, url: str, **kw: Any) -> Any:
        resp = self.call(method, url, **kw)
        assert resp.status_code < 300, (url, resp.status_code, resp.text)
        return (
            resp.json()
            if resp.headers.get("content-type", "").startswith("application/json")
            else resp.text
        )


def _alert(status: str, starts: datetime) -> dict[str, Any]:
    return {
        "version": "4",
        "status": status,
        "receiver": "warroom",
        "groupKey": '{}:{alertname="HighErrorRate"}',
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "HighErrorRate", "service": "api", "severity": "page"},
                "annotations": {"summary": "5xx ratio above 5% on api"},
                "startsAt": starts.isoformat().replace("+00:00", "Z"),
                "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else T0.isoformat(),
                "generatorURL": "http://prometheus/graph",
                "fingerprint": "4f1e2d3c4b5a6978",
            }
        ],
    }


def test_api_worked_p1_postmortem_timeline_is_the_incident_timeline(
    db_url: str, make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    clock = FrozenClock(T0)
    rt = make_runtime(db_url, CONFIG, clock)
    books = tmp_path / "runbooks"
    books.mkdir()
    (books / "high-error-rate.md").write_text(RUNBOOK)
    rt.settings = rt.settings.with_(runbooks_path=books)
    with rt.db.transaction() as s:
        user = auth.create_user(s, name="carol", role="commander", now=T0)
        token = auth.create_token(s, user=user, name="t", now=T0)
    api = Api(rt, token)

    started = T0 - timedelta(minutes=3)
    opened = api.ok(
        "POST", "/api/v1/integrations/alertmanager", json=_alert("firing", started), token=AM_TOKEN
    )
    assert opened is not None
    number = api.ok("GET", "/api/v1/incidents")["items"][0]["number"]
    flow: list[tuple[int, str, str, dict[str, Any] | None]] = [
        (4, "POST", f"/api/v1/incidents/{number}/ack", None),
        (
            2,
            "POST",
            f"/api/v1/incidents/{number}/runs",
            {"runbook": "high-error-rate", "steps": ["recent-errors"]},
        ),
        (
            3,
            "POST",
            f"/api/v1/incidents/{number}/notes",
            {"text": "Deploy 2026.11.2-3 went out at 13:55 | suspect"},
        ),
        (
            1,
            "POST",
            f"/api/v1/incidents/{number}/status",
            {"status": "identified", "text": "Bad deploy"},
        ),
        (
            2,
            "POST",
            f"/api/v1/incidents/{number}/runs",
            {"runbook": "high-error-rate", "steps": ["rollback"]},
        ),
        (5, "POST", f"/api/v1/incidents/{number}/status", {"status": "monitoring"}),
        (
            20,
            "POST",
            f"/api/v1/incidents/{number}/resolve",
            {"text": "Error rate normal for 20 minutes"},
        ),
    ]
    for minutes, method, url, body in flow:
        clock.advance(timedelta(minutes=minutes))
        api.ok(method, url, json=body) if body is not None else api.ok(method, url)
    with rt.db.transaction() as s:  # the impact is filled in by the commander before the review
        from warroom.incidents import service as incidents

        incidents.get_or_raise(s, number=number).customer_impact = "5% of API requests failed"

    events = api.ok("GET", f"/api/v1/incidents/{number}/timeline")["events"]
    kinds = [e["kind"] for e in events]
    for needed in (
        "incident.declared",
        "incident.acknowledged",
        "note",
        "incident.status",
        "incident.resolved",
    ):
        assert needed in kinds, kinds
    assert any(k.startswith("alert") for k in kinds), kinds
    assert sum(k.startswith("runbook") for k in kinds) >= 2, kinds

    clock.advance(timedelta(hours=2))
    draft = api.ok("POST", f"/api/v1/incidents/{number}/postmortem")
    assert draft["state"] == "draft" and draft["severity"] == "P1"
    md = api.ok(
        "GET", f"/api/v1/incidents/{number}/postmortem", headers={"Accept": "text/markdown"}
    )

    assert "- **Severity:** P1 (High)" in md
    assert "- **Date:** 2026-11-02 13:57" in md  # detection = the alert's startsAt
    assert "- **Duration:** 40m" in md  # 13:57 -> 14:37
    assert "- **Impact:** 5% of API requests failed" in md
    body = md.split("## Timeline\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in body.splitlines() if line.startswith("- ")]
    assert lines[0] == "- 13:57 - Problem detected"
    assert "- 14:10 - Status investigating → identified: Bad deploy" in lines
    assert "- 14:37 - Resolved: Error rate normal for 20 minutes" in lines
    assert len(lines) - 1 == len(events)
    for line, event in zip(lines[1:], events, strict=True):
        at = datetime.fromisoformat(event["at"])
        assert re.fullmatch(r"- \d\d:\d\d - .+", line)
        assert line.startswith(f"- {at.strftime('%H:%M')} - "), (line, event)
        assert markdown.inline(" ".join(event["text"].split())) in line, (line, event)

    # the viewer-facing JSON has the same order, and the draft can be corrected before publishing
    assert [e["kind"] for e in draft["timeline"][1:]] == kinds
    edited = [
        *draft["timeline"],
        {"at": "2026-11-02T13:55:00+00:00", "text": "Deploy 2026.11.2-3 rolled out"},
    ]
    api.ok("PATCH", f"/api/v1/incidents/{number}/postmortem", json={"timeline": edited})
    md = api.ok("GET", f"/api/v1/incidents/{number}/postmortem?format=md")
    assert md.split("## Timeline\n", 1)[1].split("\n## ", 1)[0].count("\n- ") == len(events) + 2
    assert "- 13:55 - Deploy 2026.11.2-3 rolled out\n- 13:57 - Problem detected" in md
    published = api.ok("POST", f"/api/v1/incidents/{number}/postmortem/publish")
    assert published["state"] == "published"
    assert (
        api.call(
            "PATCH", f"/api/v1/incidents/{number}/postmortem", json={"lessons": "x"}
        ).status_code
        == 409
    )


def test_bad_requests_get_a_4xx_naming_the_problem(
    sqlite_url: str, make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    clock = FrozenClock(T0)
    rt = make_runtime(sqlite_url, CONFIG, clock)
    books = tmp_path / "runbooks"
    books.mkdir()
    (books / "high-error-rate.md").write_text(
        RUNBOOK.replace("severity: P1", "severity: P1\ndrill_every: 90d")
    )
    rt.settings = rt.settings.with_(runbooks_path=books)
    with rt.db.transaction() as s:
        user = auth.create_user(s, name="carol", role="commander", now=T0)
        token = auth.create_token(s, user=user, name="t", now=T0)
        from warroom.incidents import service as incidents

        incidents.create(
            s, config=rt.config, title="open one", severity="P1", actor="carol", now=T0, page=False
        )
    api = Api(rt, token)
    drill = api.ok("POST", "/api/v1/drills", json={"runbook": "high-error-rate"})
    api.ok("POST", "/api/v1/incidents/1/postmortem")
    cases: list[tuple[str, str, dict[str, Any] | None, int, str | None]] = [
        ("GET", "/api/v1/reports?since=99999999999d", None, 422, "since"),
        ("GET", "/api/v1/reports?since=2026-11-02&until=2026-11-01", None, 422, "until"),
        ("GET", "/api/v1/reports?since=0001-01-01", None, 422, "since"),
        ("GET", "/api/v1/reports?since=yesterday", None, 422, "since"),
        ("POST", "/api/v1/incidents/1/postmortem/publish", None, 409, None),  # still open
        ("PATCH", "/api/v1/incidents/1/postmortem", {"timeline": "all of it"}, 422, "timeline"),
        ("PATCH", "/api/v1/incidents/1/postmortem", {"title": "   "}, 422, "title"),
        ("POST", "/api/v1/incidents/abc/postmortem", None, 422, "number"),
        ("POST", "/api/v1/actions", {"title": "x", "due_date": "someday"}, 422, "due_date"),
        ("POST", "/api/v1/actions", {"title": "x", "incident": 99}, 404, "number"),
        ("PATCH", "/api/v1/actions/5", {"state": "done"}, 404, "id"),
        ("POST", f"/api/v1/drills/{drill['id']}/finish", {"rto": "99999999999d"}, 422, "rto"),
        ("POST", f"/api/v1/drills/{drill['id']}/finish", {"rto": -1}, 422, "rto"),
        ("POST", f"/api/v1/drills/{drill['id']}/finish", {"failed": "everything"}, 422, "failed"),
        ("POST", "/api/v1/drills", {"runbook": "high-error-rate"}, 409, None),  # one at a time
        ("POST", "/api/v1/drills", {"runbook": "../etc/passwd"}, 404, "runbook"),  # ids, not paths
    ]
    for method, url, body, status, field in cases:
        resp = api.call(method, url, json=body) if body is not None else api.call(method, url)
        assert resp.status_code == status, (url, body, resp.status_code, resp.text)
        err = resp.json()["error"]
        assert err["message"], (url, err)
        if field is not None:
            assert err["field"] == field, (url, err)
    item = api.ok("POST", "/api/v1/actions", json={"title": "x"})
    bad_state = api.call("PATCH", f"/api/v1/actions/{item['id']}", json={"state": "finished"})
    assert bad_state.status_code == 422 and bad_state.json()["error"]["field"] == "state"
    assert api.call("GET", "/api/v1/actions", token="wrt_" + "x" * 30).status_code == 401
