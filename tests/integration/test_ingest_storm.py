"""Storm: 5,000 alerts in 50 groups across concurrent requests → exactly 50 incidents (SQLite, PostgreSQL)."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.support import run_server
from warroom.alerts.models import Alert
from warroom.incidents.models import Incident
from warroom.store.db import Database

pytestmark = pytest.mark.integration

TOKEN = "storm-token-" + "s" * 24
GROUPS = 50
PER_GROUP = 100
PER_REQUEST = 100
CONCURRENCY = 8


def _alert(group: int, n: int) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": f"Storm{group:02d}", "instance": f"host-{n:03d}", "job": "node"},
        "annotations": {"summary": f"storm group {group}"},
        "startsAt": "2026-11-29T03:00:00Z",
        "fingerprint": f"g{group:02d}-{n:03d}",
    }


def test_storm_opens_one_incident_per_group(tmp_path: Path, db_url: str) -> None:
    config = {
        "integrations": [{"id": "am", "type": "alertmanager", "token": TOKEN}],
        "routes": [{"match": [], "severity": "P2", "group_by": ["alertname"]}],
    }
    alerts = [_alert(g, n) for g in range(GROUPS) for n in range(PER_GROUP)]
    random.Random(4).shuffle(alerts)  # every request carries alerts of many groups
    batches = [alerts[i : i + PER_REQUEST] for i in range(0, len(alerts), PER_REQUEST)]
    replay = batches[:5]  # sent a second time: those 500 alerts count 2
    with run_server(tmp_path, db_url=db_url, config=config) as server:
        headers = {"Authorization": f"Bearer {TOKEN}"}

        def send(batch: list[dict[str, Any]]) -> int:
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as c:
                r = c.post(
                    "/api/v1/integrations/alertmanager", json={"version": "4", "alerts": batch}
                )
                return r.status_code

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            codes = list(pool.map(send, batches + replay))
        assert codes == [200] * len(codes), sorted(set(codes))
        assert "Traceback" not in server.log()
    db = Database(db_url)
    try:
        with db.read() as s:
            incidents = s.scalar(select(func.count()).select_from(Incident))
            keys = s.scalar(select(func.count(func.distinct(Incident.group_key))))
            rows = s.scalar(select(func.count()).select_from(Alert))
            total = s.scalar(select(func.sum(Alert.count)))
            per_incident = s.execute(
                select(Alert.incident_id, func.count()).group_by(Alert.incident_id)
            ).all()
    finally:
        db.dispose()
    assert incidents == GROUPS and keys == GROUPS
    assert rows == GROUPS * PER_GROUP
    assert total == GROUPS * PER_GROUP + len(replay) * PER_REQUEST
    assert sorted(n for _i, n in per_incident) == [PER_GROUP] * GROUPS
