"""The web UI in Debian's Chromium (Playwright) against a real `warroom serve`.

One server and one browser per module keep this lean; each test makes its
own incidents, so tests do not depend on each other's order.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ROOT, TEST_SECRET_KEY, Server, cli, run_server, unavailable
from warroom.core.security import sign

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"
WAIT_MS = 15_000
# Canary and CSP-violation listeners installed before any page script runs.
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile);
});
"""
CONFIG: dict[str, Any] = {
    "organization": "Example Corp",
    "people": [
        {"id": "alice", "name": "Alice Example", "email": "alice@example.com"},
        {"id": "bob", "name": "Bob Example", "email": "bob@example.com"},
    ],
    "schedules": [
        {
            "id": "primary",
            "name": "Primary on-call",
            "timezone": "UTC",
            "layers": [
                {"rotation": "weekly", "handoff": "monday 09:00", "members": ["alice", "bob"]}
            ],
        }
    ],
    "war_room": {
        "video": "https://meet.example.com/incident-war-room",
        "chat": "#incident-response",
        "status_page": "https://status.example.com",
    },
    "contacts": [{"role": "Engineering lead", "reach": "@eng-lead (Slack)"}],
    "status_page": {"title": "Example Corp status", "components": ["API", "Web app", "Database"]},
}


RUNBOOK = """---
id: web-diagnostics
title: Web diagnostics
owner: alice
severity: P1
services: [checkout]
review_every: 30d
last_reviewed: 2026-11-01
---

# Web diagnostics

## Investigate

Count to three, slowly, so the output arrives in pieces.
<script>window.__xss = 8</script> [a link](javascript:window.__xss=9)

```bash {id=count-slowly auto}
for i in 1 2 3; do echo "tick $i"; sleep 0.4; done
```

```bash {id=echo-markup auto}
printf '\033[31m<img src=x onerror=window.__xss=7>\033[0m <svg onload=window.__xss=10>\n'
```

## Mitigate

```bash {id=restart-app mutates}
echo "restarted the app"
```
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("web")
    books = tmp / "runbooks"
    books.mkdir()
    (books / "web-diagnostics.md").write_text(RUNBOOK)
    with run_server(
        tmp,
        db_url=f"sqlite:///{tmp / 'warroom.db'}",
        config=CONFIG,
        extra_env={"WARROOM_RUNBOOKS": str(books)},
    ) as srv:
        for name, role in (("casey", "commander"), ("rory", "responder")):
            r = cli(
                "user", "add", name, "--email", f"{name}@example.com", "--role", role,
                "--password-stdin", env=srv.env, input=PASSWORD + "\n",
            )  # fmt: skip
            assert r.returncode == 0, r.stderr
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        unavailable("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def new_context(browser: Any, **kwargs: Any) -> Any:
    ctx = browser.new_context(**kwargs)
    ctx.add_init_script(WATCH)
    ctx.set_default_timeout(WAIT_MS)
    return ctx


def login(page: Any, server: Server, user: str = "casey", *, next_path: str = "/") -> None:
    page.goto(f"{server.url}/login?next={next_path}")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(re.escape(server.url + next_path) + r"$"))


def declare(page: Any, server: Server, title: str, severity: str = "P1", runbook: str = "") -> int:
    page.goto(f"{server.url}/incidents/new")
    page.get_by_label("What is happening?").fill(title)
    page.locator(f"input[name=severity][value={severity}]").check()
    if runbook:
        page.get_by_label("Runbook (optional)").select_option(runbook)
    page.get_by_role("button", name="Declare incident").click()
    page.wait_for_url(re.compile(r"/incidents/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def no_violations(page: Any) -> None:
    assert page.evaluate("window.__xss") is None, "an injected script ran"
    assert page.evaluate("window.__csp") == []


def test_login_declare_see_on_dashboard_and_acknowledge(browser: Any, server: Server) -> None:
    ctx = new_context(browser)
    page = ctx.new_page()
    try:
        login(page, server)
        number = declare(page, server, "Checkout API returns 502s", "P0")
        page.goto(server.url + "/")
        row = page.locator(".incident-row", has_text="Checkout API returns 502s")
        row.wait_for()
        assert "P0" in page.locator("section", has=row).inner_text()
        countdown = row.locator("[data-countdown]")
        first = countdown.inner_text()
        assert first.startswith("in ")
        page.wait_for_function(
            "t => document.querySelector('.incident-row [data-countdown]').textContent !== t",
            arg=first,
        )  # the respond-by clock ticks without reloading
        row.get_by_role("link").click()
        page.wait_for_url(f"{server.url}/incidents/{number}")
        page.get_by_role("button", name="Acknowledge").click()
        page.wait_for_url(re.compile(rf"/incidents/{number}"))
        page.locator("#timeline .event", has_text="Acknowledged by casey via web").wait_for()
        assert page.get_by_role("button", name="Acknowledge").count() == 0
        assert "casey" in page.locator('[data-field="acknowledged_by"]').inner_text()
        no_violations(page)
    finally:
        ctx.close()


def test_second_browser_sees_the_timeline_update_live(browser: Any, server: Server) -> None:
    writer_ctx, watcher_ctx = new_context(browser), new_context(browser)
    try:
        writer, watcher = writer_ctx.new_page(), watcher_ctx.new_page()
        login(writer, server)
        number = declare(writer, server, "Queue consumers stalled")
        login(watcher, server, "rory", next_path=f"/incidents/{number}")
        watcher.locator("[data-live-indicator]").wait_for(state="visible")
        watcher.evaluate("window.__sameDocument = 'still here'")
        writer.get_by_label("Add a note").fill("Restarted consumer pod queue-7")
        writer.get_by_role("button", name="Add note").click()
        watcher.locator("#timeline .event", has_text="Restarted consumer pod queue-7").wait_for()
        writer.goto(f"{server.url}/incidents/{number}")
        writer.get_by_role("button", name="Acknowledge").click()
        watcher.locator('[data-field="clock"]', has_text="acked by casey").wait_for()
        # the watcher never reloaded: the marker set on its document is still there
        assert watcher.evaluate("window.__sameDocument") == "still here"
        no_violations(watcher)
    finally:
        writer_ctx.close()
        watcher_ctx.close()


def test_run_a_runbook_step_and_watch_its_output_arrive(browser: Any, server: Server) -> None:
    ctx, watcher_ctx = new_context(browser), new_context(browser)
    try:
        page = ctx.new_page()
        login(page, server)
        number = declare(page, server, "Checkout latency", "P1", runbook="web-diagnostics")
        watcher = watcher_ctx.new_page()
        login(watcher, server, "rory", next_path=f"/incidents/{number}")
        watcher.locator("[data-live-indicator]").wait_for(state="visible")
        output = page.locator('pre[data-output-for="count-slowly"]')
        page.get_by_role("button", name="Run step count-slowly").click()
        output.filter(has_text="tick 1").wait_for()
        # the first chunk is on screen before the step has finished
        assert "[succeeded" not in output.inner_text()
        output.filter(has_text="[succeeded").wait_for()
        assert "tick 3" in output.inner_text()
        # the result lands on the timeline, in this page and live in the other browser
        for p in (page, watcher):
            p.locator(
                "#timeline .event", has_text="Step count-slowly of web-diagnostics: succeeded"
            ).wait_for()
        watcher.locator("#timeline .event pre.output", has_text="tick 3").wait_for()
        no_violations(page)
        no_violations(watcher)

        # a responder may not run a mutating step; a commander must confirm it first
        assert watcher.get_by_role("button", name="Run step restart-app").count() == 1
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
        page.get_by_label("I understand this changes things").check()
        page.get_by_role("button", name="Run step restart-app").click()
        page.locator('pre[data-output-for="restart-app"]', has_text="restarted the app").wait_for()
        assert dialogs and "changes things" in dialogs[0]
        watcher.on("dialog", lambda d: d.accept())
        watcher.get_by_label("I understand this changes things").check()
        watcher.get_by_role("button", name="Run step restart-app").click()
        watcher.locator('pre[data-output-for="restart-app"]', has_text="commander").wait_for()
    finally:
        ctx.close()
        watcher_ctx.close()


def test_status_page_update_is_visible_logged_out(browser: Any, server: Server) -> None:
    ctx, anon = new_context(browser), new_context(browser)
    try:
        page = ctx.new_page()
        login(page, server)
        number = declare(page, server, "INTERNAL-ONLY primary db failover to replica-2")
        page.get_by_label("Add a note").fill("PRIVATE-NOTE password=hunter2hunter2")
        page.get_by_role("button", name="Add note").click()
        page.get_by_label("Public title").fill("Elevated API error rates")
        page.get_by_label("API").check()
        page.get_by_role("button", name="Publish on status page").click()
        page.get_by_label("Public update (customers read this)").fill(
            "We are investigating elevated error rates on the API."
        )
        page.get_by_label("Public status").select_option("investigating")
        page.get_by_role("button", name="Publish update").click()
        page.wait_for_url(re.compile(rf"/incidents/{number}"))
        page.goto(server.url + "/statuspage")
        page.get_by_label("State of API").select_option("partial_outage")
        page.locator("form", has=page.get_by_label("State of API")).get_by_role("button").click()

        public = anon.new_page()
        public.goto(server.url + "/status")
        assert public.url == server.url + "/status"  # no login needed
        body = public.locator("main").inner_text()
        assert "Elevated API error rates" in body
        assert "We are investigating elevated error rates on the API." in body
        assert "Partial outage" in body
        for private in ("INTERNAL-ONLY", "PRIVATE-NOTE", "hunter2", "casey"):
            assert private not in public.content()
        no_violations(public)
    finally:
        ctx.close()
        anon.close()


def test_phone_can_acknowledge_from_an_ack_link(browser: Any, server: Server) -> None:
    token = _api_token(server)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.post(
            "/api/v1/incidents",
            json={"title": "Payments webhook timeouts", "severity": "P0"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert r.status_code in (200, 201), r.text
    body = r.json()
    number = int(body.get("number") or body["incident"]["number"])
    incident_id = _incident_id(server, number)
    link = sign(
        {"i": incident_id, "n": number, "who": "alice", "exp": int(time.time()) + 3600},
        key=TEST_SECRET_KEY,
        purpose="ack",
    )
    phone = new_context(
        browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        page = phone.new_page()
        page.goto(f"{server.url}/ack/{link}")
        button = page.get_by_role("button", name=re.compile(r"Acknowledge"))
        box = button.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        button.tap()
        page.get_by_text("Acknowledged").first.wait_for()
    finally:
        phone.close()
    r = httpx.get(
        f"{server.url}/api/v1/incidents/{number}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.json()["acknowledged_by"] == "alice"


def test_phone_sized_incident_page_puts_acknowledge_in_reach(browser: Any, server: Server) -> None:
    phone = new_context(
        browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        page = phone.new_page()
        login(page, server)
        number = declare(page, server, "Mobile ack path check", "P1")
        button = page.get_by_role("button", name="Acknowledge")
        box = button.bounding_box()
        assert box is not None and box["width"] >= 300  # full width on a phone
        button.tap()
        page.locator("#timeline .event", has_text="Acknowledged by casey").wait_for()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"page scrolls sideways on a phone ({width}px)"
        assert number > 0
    finally:
        phone.close()


def test_pages_work_without_javascript(browser: Any, server: Server) -> None:
    ctx = new_context(browser, java_script_enabled=False)
    try:
        page = ctx.new_page()
        login(page, server)
        number = declare(page, server, "Read and act without scripts", "P2")
        page.get_by_label("Add a note").fill("Plain form post")
        page.get_by_role("button", name="Add note").click()
        page.locator("#timeline .event", has_text="Plain form post").wait_for()
        page.get_by_role("button", name="Acknowledge").click()
        page.locator("#timeline .event", has_text="Acknowledged by casey via web").wait_for()
        for path in ("/", "/incidents", "/runbooks/web-diagnostics", "/oncall", "/status"):
            page.goto(server.url + path)
            assert page.locator("h1").first.inner_text().strip()
        page.goto(f"{server.url}/incidents")
        assert page.locator(f'a[href="/incidents/{number}"]').count() >= 1
    finally:
        ctx.close()


XSS_NOTE = (
    '<script>window.__xss = 1</script> <img src=x onerror="window.__xss = 2"> '
    '<svg onload="window.__xss = 3"></svg> <a href="javascript:window.__xss=4">x</a>'
)


def test_injected_markup_renders_inert_everywhere(browser: Any, server: Server) -> None:
    ctx, watcher_ctx = new_context(browser), new_context(browser)
    try:
        page = ctx.new_page()
        login(page, server)
        number = declare(
            page, server, '<img src=x onerror="window.__xss=5"> title', runbook="web-diagnostics"
        )
        watcher = watcher_ctx.new_page()
        login(watcher, server, "rory", next_path=f"/incidents/{number}")
        watcher.locator("[data-live-indicator]").wait_for(state="visible")
        page.get_by_label("Add a note").fill(XSS_NOTE)
        page.get_by_role("button", name="Add note").click()
        # rendered by the server, and delivered live over SSE to the other browser
        page.locator("#timeline .event", has_text="<script>window.__xss = 1</script>").wait_for()
        watcher.locator("#timeline .event", has_text="<svg onload=").wait_for()
        # step output with HTML and ANSI escapes, streamed live and then on the timeline
        page.get_by_role("button", name="Run step echo-markup").click()
        page.locator('pre[data-output-for="echo-markup"]', has_text="[succeeded").wait_for()
        watcher.locator("#timeline .event pre.output", has_text="<svg onload=").wait_for()
        for p in (page, watcher):
            p.wait_for_timeout(300)  # give an onerror handler the chance to fire if it could
            no_violations(p)
        for path in (
            "/",
            "/incidents",
            "/incidents?q=title",
            "/statuspage",
            "/status",
            "/runbooks",
            "/runbooks/web-diagnostics",
        ):
            response = page.goto(server.url + path)
            assert response is not None and response.status == 200, path
            page.wait_for_load_state("load")
            no_violations(page)
        csp = httpx.get(f"{server.url}/incidents/{number}", timeout=30).headers[
            "content-security-policy"
        ]
        assert "unsafe-inline" not in csp and "script-src 'self'" in csp
    finally:
        ctx.close()
        watcher_ctx.close()


STALE_RUNBOOK = """---
id: high-cpu-usage
title: High CPU usage
owner: alice
severity: P2
review_every: 30d
last_reviewed: 2026-09-01
---

# High CPU usage

## Investigate

```bash {id=top auto}
uptime
```
"""


def test_screenshots_of_dashboard_incident_and_status_page(browser: Any, tmp_path: Path) -> None:
    """Screenshots for the README from a clean server; kept in docs/ when WARROOM_SCREENSHOTS=1."""
    books = tmp_path / "runbooks"
    books.mkdir()
    (books / "web-diagnostics.md").write_text(RUNBOOK)
    (books / "high-cpu-usage.md").write_text(STALE_RUNBOOK)
    config = {
        **CONFIG,
        "integrations": [
            {"id": "prod-alertmanager", "type": "alertmanager", "token": "env:AM_TOKEN"}
        ],
    }
    with run_server(
        tmp_path,
        db_url=f"sqlite:///{tmp_path / 'shots.db'}",
        config=config,
        extra_env={"WARROOM_RUNBOOKS": str(books), "AM_TOKEN": "am-token-" + "x" * 24},
    ) as server:
        r = cli(
            "user", "add", "casey", "--email", "casey@example.com", "--role", "commander",
            "--password-stdin", env=server.env, input=PASSWORD + "\n",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        _send_alert(server, "am-token-" + "x" * 24)
        _take_screenshots(browser, server, tmp_path)


def _send_alert(server: Server, token: str) -> None:
    alert = {
        "status": "firing",
        "labels": {"alertname": "HighCPUUsage", "severity": "warning", "instance": "web-3"},
        "annotations": {"summary": "CPU above 90% for 10 minutes on web-3"},
        "startsAt": "2026-11-29T03:10:00Z",
        "fingerprint": "c0ffee01",
    }
    body = {
        "version": "4", "status": "firing", "receiver": "warroom", "groupKey": "{}:{alertname=\"HighCPUUsage\"}",
        "groupLabels": {"alertname": "HighCPUUsage"}, "commonLabels": alert["labels"],
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": [alert],
    }  # fmt: skip
    r = httpx.post(
        f"{server.url}/api/v1/integrations/alertmanager",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code < 300, r.text


def _take_screenshots(browser: Any, server: Server, tmp_path: Path) -> None:
    ctx = new_context(browser, viewport={"width": 1280, "height": 860})
    try:
        page = ctx.new_page()
        login(page, server)
        number = declare(
            page,
            server,
            "Elevated 5xx on checkout-api after deploy 2026.11.29-3",
            "P1",
            runbook="web-diagnostics",
        )
        for note in (
            "Error rate 14% on checkout-api since 03:12 UTC; started with deploy 2026.11.29-3",
            "Rolling back checkout-api to 2026.11.29-2",
        ):
            page.get_by_label("Add a note").fill(note)
            page.get_by_role("button", name="Add note").click()
        page.get_by_role("button", name="Acknowledge").click()
        page.get_by_label("Public title").fill("Checkout errors")
        page.get_by_label("API").check()
        page.get_by_role("button", name="Publish on status page").click()
        page.get_by_label("Public update (customers read this)").fill(
            "Some checkouts fail. We have identified the cause and are rolling back."
        )
        page.get_by_label("Public status").select_option("identified")
        page.get_by_role("button", name="Publish update").click()
        page.get_by_role("button", name="Run step count-slowly").click()
        page.locator('pre[data-output-for="count-slowly"]', has_text="[succeeded").wait_for()
        page.get_by_label("Status", exact=True).select_option("identified")
        page.get_by_role("button", name="Set status").click()
        page.wait_for_url(re.compile(rf"/incidents/{number}"))
        page.goto(server.url + "/statuspage")
        page.get_by_label("State of API").select_option("partial_outage")
        page.locator("form", has=page.get_by_label("State of API")).get_by_role("button").click()
        page.wait_for_url(server.url + "/statuspage")
        declare(page, server, "Nightly backup job missed its heartbeat", "P2")
        shots = {
            "dashboard.png": "/",
            "incident.png": f"/incidents/{number}",
            "status-page.png": "/status",
        }
        for name, path in shots.items():
            page.goto(server.url + path)
            page.wait_for_load_state("load")
            page.screenshot(path=str(tmp_path / name), full_page=True)
            assert (tmp_path / name).stat().st_size > 10_000
        if os.environ.get("WARROOM_SCREENSHOTS") == "1":
            out = ROOT / "docs" / "screenshots"
            out.mkdir(parents=True, exist_ok=True)
            for name in shots:
                shutil.copy(tmp_path / name, out / name)
    finally:
        ctx.close()


def _api_token(server: Server) -> str:
    if "casey" not in server.tokens:
        r = cli("token", "create", "casey", "--quiet", env=server.env)
        assert r.returncode == 0, r.stderr
        server.tokens["casey"] = r.stdout.strip().splitlines()[-1]
    return server.tokens["casey"]


def _incident_id(server: Server, number: int) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(server.env["WARROOM_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT id FROM incidents WHERE number = :n"), {"n": number}
                ).scalar_one()
            )
    finally:
        engine.dispose()
