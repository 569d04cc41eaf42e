"""On-call through the real server and CLI: now/at, ICS, overrides, delivery log, retry,
test pages, bad input, and the watchdog that emails admins when the worker stalls."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest

from tests.fakes.paging import declare, deliveries, runtime_for, server_config, wait_until
from tests.fakes.receivers import FakeChatServer, SmtpSink, chat_server, smtp_server
from tests.support import Server, cli, create_user_token, run_server

pytestmark = pytest.mark.integration


def oncall_config(smtp_port: int, hook_url: str) -> dict[str, Any]:
    cfg = server_config(smtp_port, hook_url, lead_after="1h")
    cfg["people"].append({"id": "bob", "name": "Bob", "email": "bob@example.com"})
    cfg["schedules"] = [
        {
            "id": "primary",
            "name": "Primary",
            "timezone": "Europe/Berlin",
            "layers": [
                {"rotation": "weekly", "handoff": "monday 09:00", "members": ["alice", "bob"]},
                {
                    "rotation": "daily",
                    "members": ["carol"],
                    "restrict": {
                        "days": ["mon", "tue", "wed", "thu", "fri"],
                        "from": "09:00",
                        "to": "18:00",
                    },
                },
            ],
        }
    ]
    return cfg


Env = tuple[Server, dict[str, str], SmtpSink, FakeChatServer, dict[str, Any]]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("oncall")
    with smtp_server() as smtp, chat_server() as hook:
        cfg = oncall_config(smtp.port, hook.url)
        with run_server(tmp, db_url=f"sqlite:///{tmp / 'w.db'}", config=cfg) as server:
            token = create_user_token(server.env, "oncall-admin", "admin")
            cli_env = {**server.env, "WARROOM_URL": server.url, "WARROOM_TOKEN": token}
            yield server, cli_env, smtp, hook, cfg


def test_oncall_now_at_an_instant_in_business_hours_and_at_night(env: Env) -> None:
    _server, e, *_ = env
    day = cli("oncall", "now", "primary", "--at", "2026-11-04T10:00:00+01:00", env=e)
    assert day.returncode == 0, day.stderr
    assert day.stdout.startswith("primary: carol")
    night = cli("oncall", "now", "primary", "--at", "2026-11-04T22:00:00+01:00", "--json", env=e)
    data = json.loads(night.stdout)
    assert data["person"] in ("alice", "bob") and data["source"] == "layer:0"
    every = cli("oncall", "now", env=e)
    assert every.returncode == 0 and "primary:" in every.stdout


def test_ics_export_parses_and_matches_the_api_at_sampled_instants(env: Env) -> None:
    server, e, *_ = env
    r = cli("oncall", "ics", "primary", "--days", "21", env=e)
    assert r.returncode == 0, r.stderr
    cal = icalendar.Calendar.from_ical(r.stdout)
    spans = [
        (c.decoded("dtstart"), c.decoded("dtend"), str(c.get("x-warroom-person")))
        for c in cal.walk("VEVENT")
    ]
    assert spans
    start, end = spans[0][0], spans[-1][1]
    rng = random.Random(3)
    with server.client(e["WARROOM_TOKEN"]) as c:
        for _ in range(25):
            t = start + timedelta(seconds=rng.randrange(int((end - start).total_seconds())))
            who = c.get("/api/v1/oncall/primary", params={"at": t.isoformat(), "days": 0}).json()[
                "person"
            ]
            assert [p for a, b, p in spans if a <= t < b] == [who]


def test_override_add_list_remove_through_the_cli(env: Env) -> None:
    _server, e, *_ = env
    now = datetime.now(UTC)
    frm, to = (now - timedelta(minutes=1)).isoformat(), (now + timedelta(hours=1)).isoformat()
    add = cli(
        "oncall",
        "override",
        "add",
        "primary",
        "bob",
        "--from",
        frm,
        "--to",
        to,
        "--reason",
        "swap",
        "--json",
        env=e,
    )
    assert add.returncode == 0, add.stderr
    oid = json.loads(add.stdout)["id"]
    assert cli("oncall", "now", "primary", env=e).stdout.startswith("primary: bob")
    assert "swap" in cli("oncall", "override", "list", "primary", env=e).stdout
    assert cli("oncall", "override", "remove", "primary", str(oid), env=e).returncode == 0
    assert "override:runtime" not in cli("oncall", "now", "primary", env=e).stdout
    again = cli("oncall", "override", "remove", "primary", str(oid), env=e)
    assert again.returncode == 4 and "no active override" in again.stderr


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["oncall", "now", "primary", "--at", "yesterday"], 2, "at"),
        (["oncall", "now", "primary", "--at", "2026-11-04T10:00:00"], 2, "offset"),
        (["oncall", "now", "nosuch"], 4, "unknown schedule"),
        (
            [
                "oncall",
                "override",
                "add",
                "primary",
                "mallory",
                "--from",
                "2026-11-04T10:00:00Z",
                "--to",
                "2026-11-04T11:00:00Z",
            ],
            4,
            "unknown person",
        ),
        (
            [
                "oncall",
                "override",
                "add",
                "primary",
                "bob",
                "--from",
                "2030-01-02T10:00:00Z",
                "--to",
                "2030-01-01T10:00:00Z",
            ],
            2,
            "after",
        ),
        (["page", "test", "nobody-here"], 4, "unknown person"),
    ],
)
def test_bad_input_gets_one_line_and_an_exit_code(
    env: Env, args: list[str], code: int, needle: str
) -> None:
    _server, e, *_ = env
    r = cli(*args, env=e)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_api_rejects_bad_instants_with_4xx(env: Env) -> None:
    server, e, *_ = env
    with server.client(e["WARROOM_TOKEN"]) as c:
        for bad in (
            "x",
            "2026-13-01T00:00:00Z",
            "2026-11-04T10:00:00",
            "9999-12-31T23:59:59+00:00",
            "0001-01-01T00:00:00+00:00",
        ):
            r = c.get("/api/v1/oncall/primary", params={"at": bad})
            assert r.status_code == 422 and r.json()["error"]["field"] == "at"
        assert c.get("/api/v1/oncall/primary", params={"days": 9999}).status_code == 422
        assert c.get("/api/v1/oncall/nosuch.ics").status_code == 404
        assert c.get("/api/v1/incidents/99999999999/deliveries").status_code == 422
        assert c.post("/api/v1/deliveries/99999999999/retry").status_code == 422
        assert c.delete("/api/v1/oncall/primary/overrides/99999999999").status_code == 422
        assert c.get("/api/v1/oncall/" + "x" * 3000).status_code == 404
    with server.client() as anon:
        assert anon.get("/api/v1/oncall/primary").status_code == 401


def test_page_test_reports_each_contact_method(env: Env) -> None:
    _server, e, smtp, hook, _cfg = env
    before_mail, before_hook = len(smtp.to("alice@example.com")), len(hook.ok)
    r = cli("page", "test", "alice", env=e)
    assert r.returncode == 0, r.stderr
    assert "email" in r.stdout and "hook" in r.stdout and r.stdout.count("sent") == 2
    assert len(smtp.to("alice@example.com")) == before_mail + 1 and len(hook.ok) == before_hook + 1
    hook.respond = lambda _n, _r: (400, {})
    try:
        bad = cli("page", "test", "alice", "--json", env=e)
    finally:
        hook.respond = lambda _n, _r: (200, {})
    assert bad.returncode == 1
    states = {d["channel"]: d["state"] for d in json.loads(bad.stdout)["deliveries"]}
    assert states == {"email": "sent", "hook": "dead"}


def test_delivery_log_and_retry_of_a_dead_delivery(env: Env) -> None:
    server, e, _smtp, hook, cfg = env
    rt = runtime_for(server, cfg)
    try:
        hook.respond = lambda _n, _r: (400, {})
        n = declare(server, rt, e["WARROOM_TOKEN"], title="Ticket me", severity="P2")
        dead = wait_until(
            lambda: [d for d in deliveries(rt, n) if d.channel == "hook" and d.state == "dead"]
        )
        log = cli("page", "log", str(n), "--json", env=e)
        assert log.returncode == 0, log.stderr
        rows = json.loads(log.stdout)
        assert any(r["state"] == "dead" and "HTTP 400" in r["last_error"] for r in rows)
        hook.respond = lambda _n, _r: (200, {})
        r = cli("page", "retry", str(dead[0].id), env=e)
        assert r.returncode == 0, r.stderr
        wait_until(
            lambda: [d for d in deliveries(rt, n) if d.id == dead[0].id and d.state == "sent"]
        )
        again = cli("page", "retry", str(dead[0].id), env=e)
        assert again.returncode == 2 and "only dead" in again.stderr
        with server.client(e["WARROOM_TOKEN"]) as c:
            assert c.get("/api/v1/deliveries", params={"state": "bogus"}).status_code == 422
            assert c.post("/api/v1/deliveries/999999/retry").status_code == 404
    finally:
        rt.db.dispose()


def test_watchdog_emails_admins_once_when_no_worker_checks_in(
    tmp_path: Path, sqlite_url: str
) -> None:
    with smtp_server() as smtp:
        cfg = server_config(smtp.port, "http://127.0.0.1:9/unused")
        cfg["people"].append(
            {"id": "root", "name": "Root", "email": "root@example.com", "role": "admin"}
        )
        env = {"WARROOM_WATCHDOG_AFTER": "1", "WARROOM_WATCHDOG_EVERY": "0.2"}
        with run_server(
            tmp_path, db_url=sqlite_url, config=cfg, extra_env=env, worker=False
        ) as server:
            mail = smtp.wait_for(1, address="root@example.com", timeout=20)[0]
            assert "worker stalled" in str(mail["Subject"])
            with server.client() as c:
                ready = c.get("/readyz")
            assert ready.status_code == 503 and "worker" in ready.json()["checks"]
            time.sleep(1.0)
            assert len(smtp.to("root@example.com")) == 1  # once per stall, not every check


def test_signed_ics_link_works_without_login_and_refuses_tampering(env: Env) -> None:
    server, e, *_ = env
    r = cli("oncall", "ics", "primary", "--link", env=e)
    assert r.returncode == 0, r.stderr
    link = r.stdout.strip()
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    with server.client() as anon:
        ok = anon.get(path)
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/calendar")
        assert icalendar.Calendar.from_ical(ok.text).walk("VEVENT")
        token = path.rsplit("/", 1)[1]
        assert anon.get(f"/ics/{token[:-3]}xyz").status_code == 401
        assert anon.get(f"/ack/{token}").status_code == 401  # an ICS link is no ack link
