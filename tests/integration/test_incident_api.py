"""Incidents over real HTTP against `warroom serve`, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BASE_CONFIG
from tests.support import Server, cli, pg_database, run_server
from warroom.auth import service as auth
from warroom.store.db import Database

pytestmark = pytest.mark.integration

CONFIG: dict[str, Any] = {
    **BASE_CONFIG,
    # compressed clocks: the breach test waits seconds, not minutes
    "severities": {"P0": {"respond_within": "2s"}, "P1": {"respond_within": "1h"}},
    "war_room": {"video": "https://meet.example.com/war-room", "chat": "#incident-response"},
    "contacts": [{"role": "Engineering lead", "reach": "@eng-lead"}],
    "status_page": {"title": "Test status", "components": ["API"]},
}


def _tokens(server: Server, *roles: str) -> dict[str, str]:
    """One user and token per role, written straight to the server's database (fast).

    The CLI path (`warroom user add`, `warroom token create`) is driven in
    test_auth_cli.py; here it would only cost seconds per test.
    """
    db = Database(server.env["WARROOM_DATABASE_URL"])
    try:
        with db.transaction() as s:
            now = datetime.now(UTC)
            out = {}
            for role in roles:
                # the shared server outlives one test: add a suffix when the name is taken
                name = f"{role}-user"
                if auth.get_user(s, name=name) is not None:
                    name = f"{role}-user-{uuid.uuid4().hex[:6]}"
                user = auth.create_user(s, name=name, role=role, now=now)
                out[role] = auth.create_token(s, user=user, name="test", now=now)
    finally:
        db.dispose()
    return out


class Servers:
    """One `warroom serve` per database engine for this module, started on first use."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.stack = contextlib.ExitStack()
        self.started: dict[str, Server] = {}

    def get(self, engine: str) -> Server:
        if engine not in self.started:
            if engine == "sqlite":
                url = f"sqlite:///{self.tmp / 'warroom.db'}"
            else:
                url = self.stack.enter_context(pg_database())
            self.started[engine] = self.stack.enter_context(
                run_server(self.tmp, db_url=url, config=CONFIG)
            )
        return self.started[engine]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    pool = Servers(tmp_path_factory.mktemp("servers"))
    with pool.stack:
        yield pool


@pytest.fixture(params=["sqlite", "postgres"])
def engine_server(request: pytest.FixtureRequest, servers: Servers) -> Server:
    """The test runs once against a server on each engine (servers shared within the module)."""
    return servers.get(str(request.param))


@pytest.fixture
def shared_server(servers: Servers) -> Server:
    """For tests that do not depend on the database engine."""
    return servers.get("sqlite")


def _me(server: Server, token: str) -> str:
    with server.client(token) as c:
        return str(c.get("/api/v1/me").json()["name"])


def _cli_env(server: Server, token: str) -> dict[str, str]:
    return {**server.env, "WARROOM_URL": server.url, "WARROOM_TOKEN": token}


def _wait_for(fn: Any, *, what: str, attempts: int = 150, pause: float = 0.1) -> Any:
    """Poll a condition a bounded number of times (no timing assertion, just a cap)."""
    for _ in range(attempts):
        value = fn()
        if value:
            return value
        time.sleep(pause)
    raise AssertionError(f"gave up waiting for {what}")


def test_declare_ack_status_note_resolve_records_every_event_in_order_with_actors(
    engine_server: Server,
) -> None:
    server = engine_server
    tok = _tokens(server, "responder", "commander")
    responder, commander = _me(server, tok["responder"]), _me(server, tok["commander"])
    # declare through the CLI, a client of the API
    r = cli(
        "incident",
        "declare",
        "--title",
        "Checkout {{ 7*7 }} errors",
        "--severity",
        "p1",
        "--service",
        "checkout",
        "--json",
        env=_cli_env(server, tok["responder"]),
    )
    assert r.returncode == 0, r.stderr
    declared = json.loads(r.stdout)
    n = declared["number"]
    assert declared["severity"] == "P1" and declared["status"] == "investigating"
    assert declared["title"] == "Checkout {{ 7*7 }} errors"
    assert declared["war_room"]["video"] == "https://meet.example.com/war-room"
    assert declared["clocks"]["respond_by"] is not None

    with server.client(tok["responder"]) as c:
        ack = c.post(f"/api/v1/incidents/{n}/ack")
        assert ack.status_code == 200, ack.text
        assert ack.json()["acknowledged_by"] == responder
        again = c.post(f"/api/v1/incidents/{n}/ack")
        assert again.json()["changed"] is False  # idempotent, no second event
        for status in ("identified", "monitoring"):
            resp = c.post(f"/api/v1/incidents/{n}/status", json={"status": status})
            assert resp.status_code == 200, resp.text
        note = c.post(
            f"/api/v1/incidents/{n}/notes",
            json={"text": "rolled back; password=hunter2hunter2 was in the log"},
        )
        assert note.status_code == 201, note.text
        assert "hunter2hunter2" not in note.text
        # a responder may not resolve, by either door
        assert c.post(f"/api/v1/incidents/{n}/resolve").status_code == 403
        denied = c.post(f"/api/v1/incidents/{n}/status", json={"status": "resolved"})
        assert denied.status_code == 403
    r = cli("incident", "resolve", str(n), env=_cli_env(server, tok["commander"]))
    assert r.returncode == 0, r.stderr

    r = cli("incident", "show", str(n), "--json", env=_cli_env(server, tok["responder"]))
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["status"] == "resolved"
    assert shown["clocks"]["mitigated_at"] is not None
    # other domains (escalation, notifications) add their own events; people's are these
    events = [(e["kind"], e["actor"]) for e in shown["timeline"] if e["actor"] != "warroom"]
    assert events == [
        ("incident.declared", responder),
        ("incident.acknowledged", responder),
        ("incident.status", responder),
        ("incident.status", responder),
        ("note", responder),
        ("incident.resolved", commander),
    ]
    ids = [e["id"] for e in shown["timeline"]]
    assert ids == sorted(ids)
    stamps = [e["at"] for e in shown["timeline"]]
    assert stamps == sorted(stamps)

    # polling with `after` returns only newer events
    with server.client(tok["responder"]) as c:
        tail = c.get(f"/api/v1/incidents/{n}/timeline", params={"after": ids[-2]}).json()
    assert [e["kind"] for e in tail["events"]] == ["incident.resolved"]

    r = cli(
        "incident",
        "list",
        "--open",
        "-q",
        "Checkout",
        "--json",
        env=_cli_env(server, tok["responder"]),
    )
    assert r.returncode == 0 and json.loads(r.stdout)["total"] == 0
    r = cli("incident", "list", env=_cli_env(server, tok["responder"]))
    assert r.returncode == 0 and "Checkout" in r.stdout

    # every change went into the audit log, whose chain verifies
    r = cli("audit", "list", "--json", "--limit", "1000", env=server.env)
    assert r.returncode == 0, r.stderr
    actions = [
        (e["action"], e["actor"])
        for e in json.loads(r.stdout)["items"]
        if e["target"] == f"incident:{n}"
    ]
    assert actions == [
        ("incident.declare", responder),
        ("incident.ack", responder),
        ("incident.status", responder),
        ("incident.status", responder),
        ("incident.note", responder),
        ("incident.resolve", commander),
    ]
    r = cli("audit", "verify", env=server.env)
    assert r.returncode == 0, r.stderr


def test_unacknowledged_p0_breaches_and_acknowledged_one_does_not(
    engine_server: Server,
) -> None:
    server = engine_server
    tok = _tokens(server, "responder", "admin")
    with server.client(tok["responder"]) as c:
        late = c.post("/api/v1/incidents", json={"title": "nobody home", "severity": "P0"})
        acked = c.post("/api/v1/incidents", json={"title": "on it", "severity": "P0"})
        assert late.status_code == acked.status_code == 201
        n_late, n_acked = late.json()["number"], acked.json()["number"]
        assert c.post(f"/api/v1/incidents/{n_acked}/ack").status_code == 200

        def breach_events(n: int) -> list[dict[str, Any]]:
            events = c.get(f"/api/v1/incidents/{n}/timeline").json()["events"]
            return [e for e in events if e["kind"] == "clock.breached"]

        found = _wait_for(lambda: breach_events(n_late), what="breach event", attempts=300)
        assert len(found) == 1 and found[0]["actor"] == "warroom"
        assert c.get(f"/api/v1/incidents/{n_late}").json()["clocks"]["breached_at"]

    with server.client(tok["admin"]) as admin:

        def checks_done() -> bool:
            for n in (n_late, n_acked):
                body = admin.get(
                    "/api/v1/jobs",
                    params={"state": "done", "kind": "incident.breach_check", "incident": n},
                ).json()
                if int(body["total"]) != 1:
                    return False
            return True

        _wait_for(checks_done, what="both breach checks to run", attempts=300)
    with server.client(tok["responder"]) as c:
        assert breach_events(n_acked) == []
        assert c.get(f"/api/v1/incidents/{n_acked}").json()["clocks"]["breached_at"] is None


def test_severity_change_recomputes_the_clock_and_updates_render_from_config(
    shared_server: Server,
) -> None:
    server = shared_server
    tok = _tokens(server, "commander", "viewer")
    with server.client(tok["commander"]) as c:
        inc = c.post(
            "/api/v1/incidents",
            json={"title": "{{ ''.__class__.__mro__ }}", "severity": "P1", "services": ["api"]},
        ).json()
        n = inc["number"]
        before = inc["clocks"]["respond_by"]
        changed = c.post(f"/api/v1/incidents/{n}/severity", json={"severity": "P0"}).json()
        assert changed["severity"] == "P0"
        assert changed["clocks"]["respond_by"] < before  # 2 s instead of 1 h
        role = c.post(f"/api/v1/incidents/{n}/roles", json={"role": "scribe", "person": "bob"})
        assert role.json()["roles"]["scribe"] == "bob"
        details = c.post(
            f"/api/v1/incidents/{n}/details",
            json={"customer_impact": "EU customers cannot pay", "services": ["api", "payments"]},
        )
        assert details.status_code == 200, details.text
        assert details.json()["customer_impact"] == "EU customers cannot pay"
        assert details.json()["services"] == ["api", "payments"]

        preview = c.get(
            f"/api/v1/incidents/{n}/comms/internal_update", params={"message": "{{ 7*7 }}"}
        )
        assert preview.status_code == 200, preview.text
        body = preview.json()["body"]
        # user data are values, printed as written: no evaluation, no attribute access
        assert "{{ ''.__class__.__mro__ }}" in body and "{{ 7*7 }}" in body
        assert "49" not in body and "https://meet.example.com/war-room" in body
        assert "Engineering lead: @eng-lead" in body

        sent = c.post(
            f"/api/v1/incidents/{n}/updates",
            json={"template": "status_page", "public": True, "public_title": "API errors"},
        )
        assert sent.status_code == 201, sent.text
        assert sent.json()["kind"] == "update.sent"
        assert sent.json()["public_event_id"] is not None
        bad = c.post(f"/api/v1/incidents/{n}/updates", json={"template": "haiku"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "template"
        kinds = [
            e["kind"]
            for e in c.get(f"/api/v1/incidents/{n}/timeline").json()["events"]
            if e["actor"] != "warroom"
        ]
        assert kinds == [
            "incident.declared",
            "incident.severity",
            "incident.role",
            "incident.details",
            "update.sent",
            "status.published",
            "status.update",
        ]
    with server.client(tok["viewer"]) as v:
        table = v.get("/api/v1/severities").json()
        assert [(i["severity"], i["respond_within_seconds"]) for i in table["items"]] == [
            ("P0", 2),
            ("P1", 3600),
            ("P2", 4 * 3600),
            ("P3", 24 * 3600),
        ]
        assert table["items"][0]["name"] == "Critical"
        assert v.get(f"/api/v1/incidents/{n}").status_code == 200
        denied = v.post(f"/api/v1/incidents/{n}/notes", json={"text": "hi"})
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "forbidden"


MALFORMED: list[tuple[str, str, dict[str, Any], int, str | None]] = [
    # (case, path, request kwargs, status, field named)
    ("missing title", "/api/v1/incidents", {"json": {"severity": "P1"}}, 422, "title"),
    (
        "unknown severity",
        "/api/v1/incidents",
        {"json": {"title": "x", "severity": "P9"}},
        422,
        "severity",
    ),
    (
        "title wrong type",
        "/api/v1/incidents",
        {"json": {"title": 5, "severity": "P1"}},
        422,
        "title",
    ),
    (
        "services wrong type",
        "/api/v1/incidents",
        {"json": {"title": "x", "severity": "P1", "services": "api"}},
        422,
        "services",
    ),
    (
        "oversize title",
        "/api/v1/incidents",
        {"json": {"title": "x" * 301, "severity": "P1"}},
        422,
        "title",
    ),
    (
        "unknown field",
        "/api/v1/incidents",
        {"json": {"title": "x", "severity": "P1", "role": "admin"}},
        422,
        "role",
    ),
    (
        "invalid JSON",
        "/api/v1/incidents",
        {"content": b'{"title": "x",', "headers": {"Content-Type": "application/json"}},
        422,
        "body",
    ),
    (
        "wrong content type",
        "/api/v1/incidents",
        {
            "content": b"title=x&severity=P1",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        415,
        "content-type",
    ),
    ("body not an object", "/api/v1/incidents", {"json": ["title", "x"]}, 422, "body"),
    ("oversize note", "/api/v1/incidents/1/notes", {"json": {"text": "n" * 20_001}}, 422, "text"),
    ("empty note", "/api/v1/incidents/1/notes", {"json": {"text": ""}}, 422, "text"),
    (
        "unknown status",
        "/api/v1/incidents/1/status",
        {"json": {"status": "panicking"}},
        422,
        "status",
    ),
    (
        "unknown role",
        "/api/v1/incidents/1/roles",
        {"json": {"role": "king", "person": "bob"}},
        422,
        "role",
    ),
    (
        "severity wrong type",
        "/api/v1/incidents/1/severity",
        {"json": {"severity": 0}},
        422,
        "severity",
    ),
    ("bad number", "/api/v1/incidents/abc", {"method": "GET"}, 422, "number"),
    ("no such incident", "/api/v1/incidents/999/ack", {}, 404, "number"),
    (
        "bad list filter",
        "/api/v1/incidents",
        {"method": "GET", "params": {"severity": "P7"}},
        422,
        "severity",
    ),
    ("bad limit", "/api/v1/incidents", {"method": "GET", "params": {"limit": "0"}}, 422, "limit"),
]


def test_malformed_requests_get_4xx_naming_the_field_and_never_500(
    shared_server: Server,
) -> None:
    server = shared_server
    tok = _tokens(server, "commander")
    with server.client(tok["commander"]) as c:
        assert c.post("/api/v1/incidents", json={"title": "t", "severity": "P2"}).status_code == 201
        failures = []
        for case, path, kwargs, status, field in MALFORMED:
            kw = dict(kwargs)
            method = kw.pop("method", "POST")
            resp = c.request(method, path, **kw)
            err = (
                resp.json().get("error", {})
                if resp.headers.get("content-type", "").startswith("application/json")
                else {}
            )
            if resp.status_code != status or (field is not None and err.get("field") != field):
                failures.append(f"{case}: {resp.status_code} {resp.text[:200]}")
            if not err.get("message"):
                failures.append(f"{case}: no error message")
        assert not failures, "\n".join(failures)
        # a huge body is refused before it is read
        big = c.post(
            "/api/v1/incidents/1/notes",
            content=b"x" * (5 * 1024 * 1024 + 1),
            headers={"Content-Type": "application/json"},
        )
        assert big.status_code == 413
    assert "Traceback" not in server.log()
    assert "unhandled_error" not in server.log()


def test_cli_reports_bad_input_and_missing_token_in_one_line(
    shared_server: Server,
) -> None:
    server = shared_server
    tok = _tokens(server, "responder")
    env = _cli_env(server, tok["responder"])
    r = cli("incident", "declare", "--title", "x", "--severity", "P7", env=env)
    assert r.returncode == 2 and "severity" in r.stderr and "Traceback" not in r.stderr
    with server.client(tok["responder"]) as c:
        n = c.post("/api/v1/incidents", json={"title": "edit me", "severity": "P3"}).json()
    r = cli("incident", "edit", str(n["number"]), "--impact", "none yet", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["customer_impact"] == "none yet"
    r = cli("incident", "edit", str(n["number"]), env=env)
    assert r.returncode == 2 and "nothing to change" in r.stderr
    r = cli("incident", "show", "4242", env=env)
    assert r.returncode == 4 and "incident 4242 does not exist" in r.stderr
    r = cli("incident", "list", env={**env, "WARROOM_TOKEN": ""})
    assert r.returncode == 4 and "WARROOM_TOKEN" in r.stderr
    r = cli("incident", "list", env={**env, "WARROOM_URL": "http://127.0.0.1:9"})
    assert r.returncode == 3 and "cannot reach" in r.stderr
    try:
        httpx.get(f"{server.url}/api/v1/incidents", timeout=5).raise_for_status()
    except httpx.HTTPStatusError as exc:
        assert exc.response.status_code == 401
        assert exc.response.headers["www-authenticate"] == "Bearer"
    else:  # pragma: no cover - would be a security bug
        raise AssertionError("anonymous list was allowed")
