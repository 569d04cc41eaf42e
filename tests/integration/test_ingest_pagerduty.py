"""PagerDuty Events API v2 contract: same answers and status codes as PagerDuty, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from tests.integration.test_ingest import AM_TOKEN, CONFIG, PD_KEY, AppClient
from warroom.alerts.models import Alert
from warroom.core.clock import FrozenClock
from warroom.incidents.models import Incident
from warroom.jobs.runtime import Runtime
from warroom.web.app import create_app

pytestmark = pytest.mark.integration


def event(action: str, dedup: str | None = "disk-full-db1", **payload: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"routing_key": PD_KEY, "event_action": action}
    if dedup is not None:
        body["dedup_key"] = dedup
    if action == "trigger":
        body["payload"] = {
            "summary": "Disk full on db1",
            "source": "db1.example.com",
            "severity": "critical",
            "component": "postgres",
            "custom_details": {"free": "0%"},
            **payload,
        }
    return body


@pytest.fixture
def pd(
    make_runtime: Callable[..., Runtime], db_url: str, clock: FrozenClock
) -> tuple[AppClient, Runtime]:
    rt = make_runtime(db_url, CONFIG, clock)
    return AppClient(create_app(rt, None, run_worker=False)), rt


def test_trigger_ack_resolve_with_dedup_key(pd: tuple[AppClient, Runtime]) -> None:
    client, rt = pd
    for _ in range(2):  # a repeated trigger is the same alert
        r = client.post("/v2/enqueue", json=event("trigger"))
        assert r.status_code == 202
        assert r.json() == {
            "status": "success",
            "message": "Event processed",
            "dedup_key": "disk-full-db1",
        }
    with rt.db.read() as s:
        alert = s.scalars(select(Alert)).one()
        incident = s.scalars(select(Incident)).one()
    assert alert.count == 2 and alert.status == "firing"
    assert incident.severity == "P0"  # payload.severity becomes the severity label: route 0
    assert incident.acknowledged_at is None

    r = client.post("/v2/enqueue", json=event("acknowledge"))
    assert r.status_code == 202 and r.json()["dedup_key"] == "disk-full-db1"
    with rt.db.read() as s:
        assert s.scalars(select(Alert.status)).one() == "acknowledged"
        incident = s.scalars(select(Incident)).one()
    assert incident.acknowledged_by == "integration:legacy-pd"

    r = client.post("/v2/enqueue", json=event("resolve"))
    assert r.status_code == 202
    with rt.db.read() as s:
        assert s.scalars(select(Alert.status)).one() == "resolved"
        assert s.scalars(select(Incident.status)).one() == "monitoring"


def test_trigger_without_dedup_key_gets_one(pd: tuple[AppClient, Runtime]) -> None:
    client, _rt = pd
    r = client.post("/v2/enqueue", json=event("trigger", dedup=None))
    assert r.status_code == 202
    key = r.json()["dedup_key"]
    assert isinstance(key, str) and len(key) >= 16
    assert client.post("/v2/enqueue", json=event("resolve", dedup=key)).status_code == 202


def test_missing_routing_key_is_400_in_pagerduty_shape(pd: tuple[AppClient, Runtime]) -> None:
    client, rt = pd
    body = event("trigger")
    del body["routing_key"]
    r = client.post("/v2/enqueue", json=body)
    assert r.status_code == 400
    data = r.json()
    assert data["status"] == "invalid event"
    assert data["message"] == "Event object is invalid"
    assert any("routing_key" in e for e in data["errors"])
    with rt.db.read() as s:
        assert s.scalars(select(Alert)).all() == []


def test_every_problem_is_listed(pd: tuple[AppClient, Runtime]) -> None:
    client, _rt = pd
    body = {"routing_key": PD_KEY, "event_action": "trigger", "payload": {"source": "x"}}
    r = client.post("/v2/enqueue", json=body)
    assert r.status_code == 400
    errors = " ".join(r.json()["errors"])
    assert "summary" in errors and "severity" in errors


def test_unknown_or_foreign_routing_key_is_refused(pd: tuple[AppClient, Runtime]) -> None:
    client, rt = pd
    for key in ("R0UTINGKEYTHATDOESNOTEXIST00000", AM_TOKEN):
        r = client.post("/v2/enqueue", json={**event("trigger"), "routing_key": key})
        assert r.status_code == 403
        assert r.json()["status"] == "invalid event"
    with rt.db.read() as s:
        assert s.scalars(select(Alert)).all() == []


def test_payload_too_large_is_413(pd: tuple[AppClient, Runtime]) -> None:
    client, rt = pd
    body = event("trigger", custom_details={"blob": "x" * (600 * 1024)})
    r = client.post("/v2/enqueue", json=body)
    assert r.status_code == 413
    assert r.json()["status"] == "invalid event"
    with rt.db.read() as s:
        assert s.scalars(select(Alert)).all() == []


def test_ack_of_an_unknown_dedup_key_is_accepted_and_changes_nothing(
    pd: tuple[AppClient, Runtime],
) -> None:
    client, rt = pd
    r = client.post("/v2/enqueue", json=event("acknowledge", dedup="never-seen"))
    assert r.status_code == 202
    with rt.db.read() as s:
        assert s.scalars(select(Alert)).all() == []
