"""Incident actions through the web forms: role rules, filters, templates, and runbook steps.

In process over httpx's ASGI transport, on SQLite and PostgreSQL. Step runs
execute for real (bash) in the page's background thread.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import select

from tests.integration.test_web_security import TestClient, _csrf, declare, login
from warroom.auth import service as auth
from warroom.incidents.models import Incident, TimelineEvent
from warroom.jobs.runtime import Runtime
from warroom.runbooks import loader
from warroom.runbooks.model import StepKind
from warroom.runbooks.models import StepRun
from warroom.store.models import AuditEntry
from warroom.web.app import create_app

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"
CONFIG: dict[str, Any] = {
    "status_page": {"title": "Status", "components": ["API"]},
    "policies": {"mutating_steps": {"P0": "two-person", "default": "commander"}},
}
RUNBOOK = """---
id: restart-web
title: Restart web
owner: alice
severity: P2
---

# Restart web

## Mitigate

```bash {id=restart mutates}
echo "restarting web"
```

- [ ] Tell the support team

<script>alert(1)</script> [bad link](javascript:alert(2)) [good link](https://example.com/x)
"""


@pytest.fixture
def rt(db_url: str, make_runtime: Callable[..., Runtime], tmp_path: Path) -> Runtime:
    runtime = make_runtime(db_url, CONFIG)
    books = tmp_path / "books"
    books.mkdir()
    (books / "restart-web.md").write_text(RUNBOOK)
    runtime.settings = runtime.settings.with_(runbooks_path=books)
    with runtime.db.transaction() as s:
        for name, role in (("cmdr", "commander"), ("cmdr2", "commander"), ("resp", "responder")):
            auth.create_user(s, name=name, role=role, now=runtime.now(), password=PASSWORD)
    return runtime


@pytest.fixture
def app(rt: Runtime) -> Any:
    return create_app(rt)


@pytest.fixture
def as_user(app: Any) -> Iterator[Callable[[str], TestClient]]:
    made: list[TestClient] = []

    def _make(name: str) -> TestClient:
        c = TestClient(app)
        assert login(c, name, PASSWORD).status_code == 303
        made.append(c)
        return c

    yield _make
    for c in made:
        c.close()


def post(c: TestClient, path: str, **form: str) -> Any:
    return c.post(path, data={"csrf": _csrf(c.get("/").text), **form})


def events(rt: Runtime, number: int) -> list[TimelineEvent]:
    with rt.db.read() as s:
        inc = s.scalars(select(Incident).where(Incident.number == number)).one()
        return list(
            s.scalars(
                select(TimelineEvent)
                .where(TimelineEvent.incident_id == inc.id)
                .order_by(TimelineEvent.id)
            )
        )


def test_role_rules_for_severity_roles_status_and_resolve(
    rt: Runtime, as_user: Callable[[str], TestClient]
) -> None:
    resp, cmdr = as_user("resp"), as_user("cmdr")
    number = declare(resp)
    base = f"/incidents/{number}"
    assert post(resp, base + "/severity", severity="P0").status_code == 403
    assert post(resp, base + "/status", status="resolved").status_code == 403
    assert post(resp, base + "/status", status="identified").status_code == 303
    assert post(resp, base + "/roles", role="commander", person="alice").status_code == 303
    assert post(cmdr, base + "/severity", severity="P0").status_code == 303
    assert post(cmdr, base + "/status", status="resolved").status_code == 303
    kinds = [(e.kind, e.actor) for e in events(rt, number)]
    assert ("incident.status", "resp") in kinds
    assert ("incident.role", "resp") in kinds
    assert ("incident.severity", "cmdr") in kinds
    assert ("incident.resolved", "cmdr") in kinds
    with rt.db.read() as s:
        actions = [a.action for a in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    for action in ("incident.declare", "incident.status", "incident.role", "incident.severity"):
        assert action in actions
    page = cmdr.get(base).text
    assert "alice" in page and "Resolved" in page


def test_incident_list_filters_and_search(as_user: Callable[[str], TestClient]) -> None:
    c = as_user("cmdr")
    a = declare(c, "Checkout latency spike")
    declare(c, "Search indexer lagging")
    post(c, f"/incidents/{a}/status", status="resolved")

    def numbers(query: str) -> list[int]:
        html = c.get("/incidents" + query).text
        return [int(n) for n in re.findall(r'<a href="/incidents/\d+">#(\d+)</a>', html)]

    assert numbers("") == [a + 1]  # open only by default
    assert numbers("?state=all") == [a + 1, a]
    assert numbers("?state=all&q=checkout") == [a]
    assert numbers("?status=resolved") == [a]
    assert numbers("?state=all&severity=P0") == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_status_page_template_update_goes_public_only_when_published(
    rt: Runtime, as_user: Callable[[str], TestClient]
) -> None:
    c = as_user("cmdr")
    number = declare(c, "INTERNAL db thing")
    base = f"/incidents/{number}"
    assert (
        post(c, base + "/updates", template="status_page", message="More soon.").status_code == 303
    )
    assert "More soon." not in c.get("/status").text
    post(c, base + "/publish", public_title="Slow pages", components="API")
    assert (
        post(c, base + "/updates", template="status_page", message="More soon.").status_code == 303
    )
    public = c.get("/status.json").json()
    assert "More soon." in public["incidents"][0]["updates"][0]["text"]
    assert "INTERNAL" not in c.get("/status").text
    kinds = [e.kind for e in events(rt, number)]
    assert kinds.count("update.sent") == 2 and kinds.count("status.update") == 1
    bad = post(c, base + "/updates", template="tweet")
    assert bad.status_code == 422 and "unknown communications template" in bad.text


def _wait_for_step_runs(rt: Runtime, count: int) -> list[StepRun]:
    deadline = time.monotonic() + 20
    rows: list[StepRun] = []
    while time.monotonic() < deadline:
        with rt.db.read() as s:
            rows = list(s.scalars(select(StepRun).order_by(StepRun.id)))
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"expected {count} step runs, found {len(rows)}")


def test_mutating_steps_need_a_commander_confirmation_and_on_p0_a_second_commander(
    rt: Runtime, as_user: Callable[[str], TestClient]
) -> None:
    resp, cmdr, cmdr2 = as_user("resp"), as_user("cmdr"), as_user("cmdr2")
    number = declare(cmdr)
    post(cmdr, f"/incidents/{number}/severity", severity="P0")
    path = f"/incidents/{number}/steps"
    step = {"runbook": "restart-web", "step": "restart"}
    assert post(resp, path, **step, confirm="yes").status_code == 403
    r = post(cmdr, path, **step)
    assert r.status_code == 422 and "tick the confirmation box" in r.text
    # P0: the first commander's click only asks; asking twice does not count as two people
    assert post(cmdr, path, **step, confirm="yes").status_code == 303
    assert post(cmdr, path, **step, confirm="yes").status_code == 303
    assert [e.kind for e in events(rt, number)].count("runbook.step_requested") == 2
    with rt.db.read() as s:
        assert s.scalars(select(StepRun)).first() is None
    assert post(cmdr2, path, **step, confirm="yes").status_code == 303
    (row,) = _wait_for_step_runs(rt, 1)
    assert (row.step_id, row.outcome, row.actor) == ("restart", "succeeded", "cmdr2")
    assert "restarting web" in row.output
    deadline = time.monotonic() + 10
    while "runbook.step" not in [e.kind for e in events(rt, number)]:
        assert time.monotonic() < deadline, "the finished step never reached the timeline"
        time.sleep(0.1)
    r = post(resp, path, runbook="restart-web", step="nope")
    assert r.status_code == 422 and "has no step" in r.text
    # a checklist item is ticked by a person and recorded, never run
    book = loader.load_file(rt.settings.runbooks_path / "restart-web.md")
    (manual,) = [st for st in book.steps if st.kind is StepKind.MANUAL]
    assert post(resp, path, runbook="restart-web", step=manual.id).status_code == 303
    ticked = [e for e in events(rt, number) if e.kind == "runbook.step" and e.actor == "resp"]
    assert ticked and "Tell the support team" in ticked[0].text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_runbook_pages_render_sanitised_markdown_with_steps_marked(
    as_user: Callable[[str], TestClient],
) -> None:
    c = as_user("resp")
    listing = c.get("/runbooks")
    assert listing.status_code == 200 and 'href="/runbooks/restart-web"' in listing.text
    page = c.get("/runbooks/restart-web")
    assert page.status_code == 200, page.text[:300]
    html = page.text
    assert 'class="step-marker"' in html and "step · shell · restart" in html
    assert 'class="step-block mutates"' in html
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert 'href="javascript:' not in html  # left as plain text, never a link
    assert 'href="https://example.com/x" rel="noopener noreferrer nofollow"' in html
    assert "no owner" not in html  # lint ran: the owner is set, so no such warning


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_page_renders_for_a_viewer(
    rt: Runtime, app: Any, as_user: Callable[[str], TestClient]
) -> None:
    cmdr = as_user("cmdr")
    number = declare(cmdr)
    with rt.db.transaction() as s:
        auth.create_user(s, name="view", role="viewer", now=rt.now(), password=PASSWORD)
    viewer = as_user("view")
    paths = {
        getattr(route, "path", "")
        for route in iter_route_contexts(app.routes)
        if "GET" in (getattr(route, "methods", None) or set())
    }
    pages = sorted(
        p.replace("{number}", str(number)).replace("{runbook_id}", "restart-web")
        for p in paths
        if p == "/"
        or p.startswith(("/incidents", "/runbooks", "/oncall", "/alerts", "/statuspage"))
    )
    pages = [p for p in pages if not p.endswith("/events") and p != "/incidents/new"]
    assert len(pages) >= 8, pages
    for path in pages:
        r = viewer.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("text/html")
    # declaring needs the responder role; a viewer gets a page that says so
    r = viewer.get("/incidents/new")
    assert r.status_code == 403 and "responder role" in r.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_edited_runbook_shows_up_on_the_next_page_view(
    rt: Runtime, as_user: Callable[[str], TestClient]
) -> None:
    c = as_user("resp")
    assert "Restart web" in c.get("/runbooks").text
    path = rt.settings.runbooks_path / "restart-web.md"
    path.write_text(RUNBOOK.replace("title: Restart web", "title: Restart the web tier"))
    assert "Restart the web tier" in c.get("/runbooks").text
    (rt.settings.runbooks_path / "second.md").write_text(
        RUNBOOK.replace("id: restart-web", "id: second").replace("Restart web", "Second book")
    )
    assert "Second book" in c.get("/runbooks").text
