"""Web UI security over HTTP: sessions and cookies, CSRF on every form, login limits, escaping.

Runs the real app in process (httpx over ASGI) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import select

from warroom.auth import service as auth
from warroom.auth.models import WebSession
from warroom.core.security import hash_token
from warroom.jobs.runtime import Runtime
from warroom.web.app import create_app
from warroom.web.deps import SESSION_COOKIE, SESSION_COOKIE_INSECURE

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"
# Pure HTTP behaviour that does not depend on the database engine runs on SQLite only,
# to keep the suite lean; everything that stores or reads state runs on both.
ENGINE_AGNOSTIC = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
CONFIG: dict[str, Any] = {"status_page": {"title": "Status", "components": ["API"]}}


@pytest.fixture
def rt(db_url: str, make_runtime: Callable[..., Runtime]) -> Runtime:
    runtime = make_runtime(db_url, CONFIG)
    with runtime.db.transaction() as s:
        for name, role in (("cmdr", "commander"), ("watcher", "viewer"), ("resp", "responder")):
            auth.create_user(s, name=name, role=role, now=runtime.now(), password=PASSWORD)
    return runtime


class TestClient:
    """A synchronous face on httpx's ASGI transport: one event loop, cookies kept."""

    __test__ = False

    def __init__(self, app: FastAPI, base_url: str = "http://testserver") -> None:
        self.app = app
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=base_url, follow_redirects=False
        )
        self.cookies = self._client.cookies

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._loop.run_until_complete(self._client.get(url, **kwargs))

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._loop.run_until_complete(self._client.post(url, **kwargs))

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()

    def __enter__(self) -> TestClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt)) as c:
        yield c


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no csrf field on the page"
    return found.group(1)


def login(c: TestClient, user: str = "cmdr", password: str = PASSWORD) -> Any:
    page = c.get("/login")
    return c.post(
        "/login",
        data={"csrf": _csrf(page.text), "user": user, "password": password, "next": "/"},
    )


def declare(c: TestClient, title: str = "Disk full on db-1") -> int:
    token = _csrf(c.get("/incidents/new").text)
    r = c.post("/incidents", data={"csrf": token, "title": title, "severity": "P2"})
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def test_login_sets_an_httponly_lax_cookie_and_stores_only_a_hash(
    client: TestClient, rt: Runtime
) -> None:
    r = login(client)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = next(
        h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE_INSECURE)
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain-HTTP loopback cannot set Secure cookies
    raw = client.cookies[SESSION_COOKIE_INSECURE]
    with rt.db.read() as s:
        rows = s.scalars(select(WebSession)).all()
    assert [row.id_hash for row in rows] == [hash_token(raw)]
    assert client.get("/").status_code == 200


def test_over_https_the_cookie_is_host_prefixed_and_secure(rt: Runtime) -> None:
    with TestClient(create_app(rt), base_url="https://testserver") as c:
        r = login(c)
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
        assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/" in cookie
        assert "Domain" not in cookie and "SameSite=lax" in cookie
        assert c.get("/").status_code == 200
        raw = c.cookies[SESSION_COOKIE]
    # over HTTPS an unprefixed cookie (which a sibling domain could plant) is not honoured
    with TestClient(create_app(rt), base_url="https://testserver") as c:
        c.cookies.set(SESSION_COOKIE_INSECURE, raw)
        assert c.get("/").status_code == 303


def test_every_form_post_without_the_csrf_token_is_refused(client: TestClient) -> None:
    login(client)
    number = declare(client)
    posts = [
        path.replace("{number}", str(number))
        for route in iter_route_contexts(client.app.routes)
        for path in [getattr(route, "path", "")]
        if "POST" in (getattr(route, "methods", None) or set())
        and not path.startswith(("/api/", "/v2/", "/ack/"))
        and path != "/login"
    ]
    assert {"/incidents", f"/incidents/{number}/ack", f"/incidents/{number}/notes"} <= set(posts)
    for path in posts:
        for form in ({}, {"csrf": "forged-token"}):
            r = client.post(path, data={**form, "text": "x", "status": "monitoring"})
            assert r.status_code == 403, (path, r.status_code, r.text[:200])
            assert "security token" in r.text
    page = client.get(f"/incidents/{number}").text
    assert "not yet" in page  # nothing was acknowledged by the refused posts


@ENGINE_AGNOSTIC
def test_the_login_form_needs_its_own_csrf_token(client: TestClient) -> None:
    client.get("/login")
    r = client.post("/login", data={"user": "cmdr", "password": PASSWORD})
    assert r.status_code == 403
    assert SESSION_COOKIE_INSECURE not in client.cookies


@ENGINE_AGNOSTIC
def test_wrong_password_and_unknown_user_get_the_same_answer(client: TestClient) -> None:
    wrong = login(client, "cmdr", "not the password at all")
    unknown = login(client, "nobody-here", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong user name, password or token." in wrong.text
    assert "Wrong user name, password or token." in unknown.text


@ENGINE_AGNOSTIC
def test_logins_are_rate_limited_per_account(client: TestClient) -> None:
    for _ in range(10):
        assert login(client, "cmdr", "wrong password guess").status_code == 401
    r = login(client, "cmdr", PASSWORD)  # even the right password waits
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert login(client, "resp", PASSWORD).status_code == 303  # other accounts are unaffected


@ENGINE_AGNOSTIC
def test_api_token_logs_in_and_next_cannot_leave_the_site(client: TestClient, rt: Runtime) -> None:
    with rt.db.transaction() as s:
        user = auth.get_user(s, name="resp")
        assert user is not None
        token = auth.create_token(s, user=user, name="web", now=rt.now())
    page = client.get("/login")
    r = client.post(
        "/login", data={"csrf": _csrf(page.text), "token": token, "next": "//evil.example/x"}
    )
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert "resp · responder" in client.get("/").text


@ENGINE_AGNOSTIC
def test_pages_send_strangers_to_login_and_the_api_answers_json(client: TestClient) -> None:
    r = client.get("/incidents?state=all")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/incidents%3Fstate%3Dall"
    r = client.get("/api/v1/status/components")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"


def test_a_viewer_reads_but_cannot_acknowledge(client: TestClient, rt: Runtime) -> None:
    login(client)
    number = declare(client)
    client.post("/logout", data={"csrf": _csrf(client.get("/").text)})
    login(client, "watcher")
    page = client.get(f"/incidents/{number}")
    assert page.status_code == 200 and 'id="ack-button"' not in page.text
    r = client.post(f"/incidents/{number}/ack", data={"csrf": _csrf(client.get("/").text)})
    assert r.status_code == 403 and "responder role" in r.text


def test_logout_ends_the_session_on_the_server(client: TestClient) -> None:
    login(client)
    raw = client.cookies[SESSION_COOKIE_INSECURE]
    r = client.post("/logout", data={"csrf": _csrf(client.get("/").text)})
    assert r.status_code == 303
    client.cookies.set(SESSION_COOKIE_INSECURE, raw)  # a copied cookie is now worthless
    assert client.get("/").status_code == 303


@ENGINE_AGNOSTIC
def test_html_responses_carry_the_security_headers(client: TestClient) -> None:
    login(client)
    number = declare(client)
    for path in ("/login", "/", f"/incidents/{number}", "/status", "/runbooks", "/oncall"):
        r = client.get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "<script>" not in r.text  # no inline script anywhere; ours is /static/app.js


@ENGINE_AGNOSTIC
def test_user_text_is_escaped_in_every_page(client: TestClient) -> None:
    login(client)
    number = declare(client, 'Bad <script>alert(1)</script> "title"')
    csrf = _csrf(client.get(f"/incidents/{number}").text)
    client.post(
        f"/incidents/{number}/notes",
        data={"csrf": csrf, "text": '<img src=x onerror="alert(2)">'},
    )
    for path in (f"/incidents/{number}", "/", "/incidents"):
        html = client.get(path).text
        assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    html = client.get(f"/incidents/{number}").text
    assert "<img src=x" not in html and "&lt;img src=x onerror=" in html


BAD_INPUT = [
    ("post", "/incidents", {"title": "x", "severity": "P9"}, 422, "unknown severity"),
    ("post", "/incidents", {"severity": "P1"}, 422, "title is required"),
    ("post", "/incidents", {"title": "x", "severity": "P1", "runbook": "ghost"}, 422, "runbook &#39;ghost&#39; does not exist"),
    ("post", "/incidents/{n}/notes", {"text": "   "}, 422, "text is required"),
    ("post", "/incidents/{n}/status", {"status": "sleeping"}, 422, "unknown status"),
    ("post", "/incidents/{n}/steps", {"runbook": "nope", "step": "x"}, 404, "runbook"),
    ("post", "/incidents/{n}/public-updates", {"status": "investigating", "text": "hi"}, 422, "not on the status page"),
    ("post", "/statuspage/components", {"component": "Moon", "state": "degraded"}, 422, "unknown status-page component"),
    ("post", "/incidents/{n}/notes", {"text": "x" * 20_001}, 422, "longer than"),
    ("get", "/incidents/999", {}, 404, "does not exist"),
    ("get", "/incidents/abc", {}, 422, "number"),
    ("get", "/incidents?status=bogus", {}, 422, "unknown status"),
    ("get", "/runbooks/no-such-book", {}, 404, "does not exist"),
]  # fmt: skip


@ENGINE_AGNOSTIC
def test_bad_input_gets_a_clear_4xx_page_never_a_500(client: TestClient) -> None:
    login(client)
    number = declare(client)
    csrf = _csrf(client.get("/").text)
    for method, path, form, status, message in BAD_INPUT:
        url = path.replace("{n}", str(number))
        r = client.post(url, data={"csrf": csrf, **form}) if method == "post" else client.get(url)
        assert r.status_code == status, (url, r.text[:300])
        assert message in r.text, (url, r.text[:300])
        assert "Traceback" not in r.text and r.headers["content-type"].startswith("text/html")


@ENGINE_AGNOSTIC
def test_the_json_api_ignores_the_session_cookie_for_writes_without_a_csrf_header(
    client: TestClient,
) -> None:
    login(client)
    number = declare(client)
    assert client.get("/api/v1/status/components").status_code == 200  # reads are fine
    r = client.post(f"/api/v1/status/incidents/{number}", json={"public_title": "Outage"})
    assert r.status_code == 401
    csrf = _csrf(client.get("/").text)
    r = client.post(
        f"/api/v1/status/incidents/{number}",
        json={"public_title": "Outage"},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 200
