"""Helpers for paging tests against a real `warroom serve`: config, declaring, reading state."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select

from tests.support import TEST_SECRET_KEY, Server
from warroom.bootstrap import build_runtime
from warroom.config.loader import parse_config
from warroom.incidents import service as incidents
from warroom.incidents.models import Incident, TimelineEvent
from warroom.jobs.runtime import Runtime
from warroom.notify.models import Delivery
from warroom.settings import Settings

T = TypeVar("T")


def server_config(
    smtp_port: int, hook_url: str, *, lead_after: str = "3s", **over: Any
) -> dict[str, Any]:
    """People, a schedule, email + webhook channels and a short P0 escalation."""
    retry = {"max_attempts": 4, "backoff_base": "200ms", "backoff_cap": "2s", "timeout": "3s"}
    cfg: dict[str, Any] = {
        "organization": "Paging Test",
        "people": [
            {
                "id": "alice",
                "name": "Alice",
                "email": "alice@example.com",
                "role": "commander",
                "contact": [{"channel": "email"}, {"channel": "hook"}],
            },
            {"id": "carol", "name": "Carol Lead", "email": "carol@example.com"},
        ],
        "teams": [{"id": "ops", "name": "Ops", "lead": "carol", "members": ["alice"]}],
        "schedules": [{"id": "primary", "layers": [{"rotation": "weekly", "members": ["alice"]}]}],
        "channels": {
            "email": {
                "type": "smtp",
                "host": "127.0.0.1",
                "port": smtp_port,
                "from": "warroom@example.com",
                "to": "tickets@example.com",
                "retry": retry,
                "rate_limit_per_minute": 5000,
            },
            "hook": {
                "type": "webhook",
                "url": hook_url,
                "fallback": "email",
                "retry": retry,
                "rate_limit_per_minute": 5000,
            },
        },
        "escalation_policies": {
            "page-oncall": {
                "levels": [
                    {"notify": ["schedule:primary"], "after": "0s"},
                    {"notify": ["team:ops:lead"], "after": lead_after},
                ]
            },
            "notify-lead": {"levels": [{"notify": ["team:ops:lead"]}]},
            "ticket": {"levels": [{"notify": ["channel:hook"]}]},
            "backlog": {"levels": []},
        },
    }
    cfg.update(over)
    return cfg


def runtime_for(server: Server, config: dict[str, Any]) -> Runtime:
    """A runtime on the server's database (to read state, or declare when no API exists)."""
    settings = Settings(database_url=server.env["WARROOM_DATABASE_URL"], secret_key=TEST_SECRET_KEY)
    return build_runtime(settings, config=parse_config(config))


def declare(
    server: Server, rt: Runtime, token: str | None, *, title: str, severity: str = "P0"
) -> int:
    """Declare through POST /api/v1/incidents when it exists, else through the service."""
    if token:
        with server.client(token) as c:
            r = c.post("/api/v1/incidents", json={"title": title, "severity": severity})
        if r.status_code in (200, 201):
            return int(r.json()["number"])
        assert r.status_code in (404, 405), r.text
    with rt.db.transaction() as s:
        inc = incidents.create(
            s, config=rt.config, title=title, severity=severity, actor="test", now=rt.now()
        )
        return inc.number


def incident(rt: Runtime, number: int) -> Incident:
    with rt.db.read() as s:
        return incidents.get_or_raise(s, number=number)


def deliveries(rt: Runtime, number: int | None = None) -> list[Delivery]:
    with rt.db.read() as s:
        stmt = select(Delivery).order_by(Delivery.id)
        if number is not None:
            stmt = stmt.where(Delivery.incident_id == incidents.get_or_raise(s, number=number).id)
        return list(s.scalars(stmt))


def events(rt: Runtime, number: int, kind: str) -> list[TimelineEvent]:
    with rt.db.read() as s:
        inc = incidents.get_or_raise(s, number=number)
        return list(
            s.scalars(
                select(TimelineEvent).where(
                    TimelineEvent.incident_id == inc.id, TimelineEvent.kind == kind
                )
            )
        )


def wait_until(fn: Callable[[], T], *, timeout: float = 20, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    last: T = fn()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
        last = fn()
    return last
