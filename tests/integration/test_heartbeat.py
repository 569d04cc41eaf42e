"""Heartbeat integrations: a missed check-in opens an incident; resumed pings record recovery."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.integration.test_ingest import AppClient
from warroom.alerts.jobs import heartbeat_sweep
from warroom.core.clock import FrozenClock
from warroom.incidents.models import Incident, TimelineEvent
from warroom.jobs.runtime import Runtime
from warroom.web.app import create_app

pytestmark = pytest.mark.integration

HB_TOKEN = "hb-token-" + "h" * 24
CONFIG = {
    "integrations": [
        {
            "id": "nightly-backup",
            "type": "heartbeat",
            "token": HB_TOKEN,
            "expect_every": "25h",
            "severity": "P1",
            "service": "backups",
        },
        {"id": "am", "type": "alertmanager", "token": "am-token-" + "a" * 24},
    ],
}


@pytest.fixture
def hb(
    make_runtime: Callable[..., Runtime], db_url: str, clock: FrozenClock
) -> tuple[AppClient, Runtime]:
    rt = make_runtime(db_url, CONFIG, clock)
    return AppClient(create_app(rt, None, run_worker=False)), rt


def _incidents(rt: Runtime) -> list[Incident]:
    with rt.db.read() as s:
        return list(s.scalars(select(Incident)))


def test_missed_heartbeat_opens_one_incident_and_resumed_pings_record_recovery(
    hb: tuple[AppClient, Runtime], clock: FrozenClock
) -> None:
    client, rt = hb
    auth = {"Authorization": f"Bearer {HB_TOKEN}"}
    assert (
        client.post("/api/v1/integrations/heartbeat/nightly-backup", headers=auth).status_code
        == 200
    )
    clock.advance(timedelta(hours=24))
    heartbeat_sweep(rt)
    assert _incidents(rt) == []  # not late yet
    assert (
        client.get("/api/v1/integrations/heartbeat/nightly-backup", headers=auth).status_code == 200
    )
    clock.advance(timedelta(hours=25, minutes=1))
    heartbeat_sweep(rt)
    heartbeat_sweep(rt)  # a second sweep does not open a second incident
    [incident] = _incidents(rt)
    assert incident.severity == "P1" and incident.source == "heartbeat"
    assert incident.services == ["backups"] and "nightly-backup" in incident.title
    clock.advance(timedelta(minutes=5))
    r = client.post("/api/v1/integrations/heartbeat/nightly-backup", headers=auth)
    assert r.json()["recovered"] is True
    [incident] = _incidents(rt)
    assert incident.status == "monitoring"  # the default policy when the signal clears
    with rt.db.read() as s:
        kinds = list(
            s.scalars(select(TimelineEvent.kind).where(TimelineEvent.incident_id == incident.id))
        )
    assert "heartbeat.missed" in kinds and "heartbeat.resumed" in kinds


def test_first_sweep_starts_the_clock_instead_of_alerting(
    hb: tuple[AppClient, Runtime], clock: FrozenClock
) -> None:
    _client, rt = hb
    heartbeat_sweep(rt)
    clock.advance(timedelta(hours=24))
    heartbeat_sweep(rt)
    assert _incidents(rt) == []
    clock.advance(timedelta(hours=2))
    heartbeat_sweep(rt)
    assert len(_incidents(rt)) == 1


def test_ping_needs_this_integrations_token(hb: tuple[AppClient, Runtime]) -> None:
    client, _rt = hb
    url = "/api/v1/integrations/heartbeat/nightly-backup"
    assert client.post(url).status_code == 401
    assert (
        client.post(url, headers={"Authorization": "Bearer am-token-" + "a" * 24}).status_code
        == 401
    )
    other = "/api/v1/integrations/heartbeat/am"
    assert client.post(other, headers={"Authorization": f"Bearer {HB_TOKEN}"}).status_code == 401
