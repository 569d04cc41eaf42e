"""R13: duplicated and shuffled firing/resolved notifications converge on the latest state."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.integration.test_ingest import AM_TOKEN, CONFIG
from warroom.alerts import inbound
from warroom.alerts.models import Alert
from warroom.core.clock import FrozenClock
from warroom.incidents.models import Incident
from warroom.jobs.runtime import Runtime

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _episodes(rng: random.Random, name: str) -> tuple[list[dict[str, Any]], str]:
    """Alternating firing/resolved notifications of one alert; returns them and the final status."""
    labels = {"alertname": name, "instance": "i"}
    events: list[dict[str, Any]] = []
    t = T0
    final = "firing"
    for _ in range(rng.randint(1, 3)):
        start = t + timedelta(minutes=rng.randint(1, 5))
        events.append({"status": "firing", "labels": labels, "startsAt": _iso(start)})
        final = "firing"
        if rng.random() < 0.7:
            end = start + timedelta(minutes=rng.randint(1, 5))
            events.append(
                {
                    "status": "resolved",
                    "labels": labels,
                    "startsAt": _iso(start),
                    "endsAt": _iso(end),
                }
            )
            final = "resolved"
            t = end
        else:
            break
    return events, final


def test_replayed_and_shuffled_notifications_end_in_the_latest_state(
    make_runtime: Callable[..., Runtime], db_url: str, clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, CONFIG, clock)
    rng = random.Random(13)
    expected: dict[str, str] = {}
    deliveries: list[dict[str, Any]] = []
    for i in range(12):
        name = f"Flappy{i:02d}"
        events, final = _episodes(rng, name)
        expected[name] = final
        deliveries += events * 3  # every notification delivered three times
    rng.shuffle(deliveries)
    for alert in deliveries:
        clock.advance(timedelta(seconds=1))
        raw = json.dumps({"version": "4", "alerts": [alert]}).encode()
        inbound.alertmanager(rt, raw, AM_TOKEN)
    with rt.db.read() as s:
        alerts = {a.name: a for a in s.scalars(select(Alert))}
        incidents = list(s.scalars(select(Incident)))
    assert {n: a.status for n, a in alerts.items()} == expected
    # at most one incident per alert, and every alert still firing has its open incident
    assert len({i.group_key for i in incidents}) == len(incidents) <= len(expected)
    by_id = {i.id: i for i in incidents}
    for name, status in expected.items():
        if status == "firing":
            assert by_id[alerts[name].incident_id].status == "investigating", name
