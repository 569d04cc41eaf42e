"""Crash test (RELIABILITY R1, CI size): 1,000 alerts in 100 groups through the Alertmanager
endpoint, the server SIGKILLed mid-storm and restarted. Every alert whose request got a
2xx is stored, every incident gets its pages, and any repeat carries the same
idempotency key / Message-ID; repeats are counted and printed."""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.fakes.paging import runtime_for, server_config, wait_until
from tests.fakes.receivers import chat_server, smtp_server
from tests.support import run_server, unavailable
from warroom.alerts.models import Alert
from warroom.incidents.models import Incident
from warroom.notify.models import Delivery

pytestmark = pytest.mark.e2e

GROUPS = 100
PER_GROUP = 10
AM_TOKEN = "am-token-" + "t" * 30


def _batch(group: int, part: int) -> dict[str, Any]:
    alerts = [
        {
            "status": "firing",
            "labels": {
                "alertname": f"Storm{group}",
                "severity": "critical",
                "instance": f"i-{part}-{k}",
            },
            "annotations": {"summary": f"storm group {group}"},
            "startsAt": "2026-11-29T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.local/graph",
        }
        for k in range(PER_GROUP)
    ]
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="Storm{group}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "warroom",
        "groupLabels": {"alertname": f"Storm{group}"},
        "commonLabels": {"alertname": f"Storm{group}", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.local",
        "alerts": alerts,
    }


def test_sigkill_during_an_alert_storm_loses_no_alert_and_no_page(
    tmp_path: Path, sqlite_url: str
) -> None:
    with smtp_server() as smtp, chat_server() as hook:
        cfg = server_config(smtp.port, hook.url, lead_after="1h")
        cfg["integrations"] = [{"id": "am", "type": "alertmanager", "token": "env:WR_AM_TOKEN"}]
        cfg["routes"] = [
            {"match": ['severity="critical"'], "severity": "P0", "group_by": ["alertname"]}
        ]
        env = {"WR_AM_TOKEN": AM_TOKEN, "WARROOM_JOB_LEASE": "3", "WARROOM_LOG_LEVEL": "warning"}
        with run_server(tmp_path, db_url=sqlite_url, config=cfg, extra_env=env) as server:
            headers = {"Authorization": f"Bearer {AM_TOKEN}"}
            probe = httpx.post(
                f"{server.url}/api/v1/integrations/alertmanager", json={}, headers=headers
            )
            if probe.status_code in (404, 405):
                unavailable("POST /api/v1/integrations/alertmanager is not built yet")
            batches = [(g, 0) for g in range(GROUPS)]  # one webhook per group, 10 alerts each
            random.Random(7).shuffle(batches)
            accepted: set[tuple[int, int]] = set()
            lock = threading.Lock()
            kill_after = len(batches) // 3
            sent = 0
            killed = threading.Event()

            def post(item: tuple[int, int]) -> bool:
                try:
                    r = httpx.post(
                        f"{server.url}/api/v1/integrations/alertmanager",
                        json=_batch(*item),
                        headers=headers,
                        timeout=10,
                    )
                except httpx.HTTPError:
                    return False
                if 200 <= r.status_code < 300:
                    with lock:
                        accepted.add(item)
                    return True
                assert r.status_code >= 500 or r.status_code == 429, (
                    r.text
                )  # never a 4xx for good input
                return False

            with ThreadPoolExecutor(4) as pool:
                for ok in pool.map(post, batches):
                    sent += 1
                    if sent == kill_after and not killed.is_set():
                        killed.set()
                        server.kill()
                        server.restart()
                    del ok
            # like Prometheus, re-send whatever did not get a 2xx
            for _ in range(5):
                missing = [b for b in batches if b not in accepted]
                if not missing:
                    break
                for item in missing:
                    post(item)
            assert len(accepted) == len(batches)

            rt = runtime_for(server, cfg)
            try:
                with rt.db.read() as s:
                    stored = s.scalar(select(func.count()).select_from(Alert))
                    assert stored == GROUPS * PER_GROUP
                    n_incidents = s.scalar(select(func.count()).select_from(Incident))
                assert n_incidents == GROUPS

                def all_paged() -> bool:
                    with rt.db.read() as s:
                        sent_rows = s.scalar(
                            select(func.count())
                            .select_from(Delivery)
                            .where(Delivery.state == "sent")
                        )
                    return sent_rows == 2 * GROUPS

                wait_until(all_paged, timeout=120, what="every incident paged by email and webhook")
                mail_ids = Counter(smtp.message_ids())
                hook_keys = Counter(hook.keys())
                assert len(mail_ids) == GROUPS and len(hook_keys) == GROUPS
                repeats = sum(c - 1 for c in mail_ids.values()) + sum(
                    c - 1 for c in hook_keys.values()
                )
                print(
                    f"\nstorm: {len(accepted)} batches, {GROUPS * PER_GROUP} alerts, "
                    f"{GROUPS} incidents, 1 kill, repeats={repeats}"
                )
                assert repeats <= 1  # at most one repeat per kill, with the same key
            finally:
                rt.db.dispose()
