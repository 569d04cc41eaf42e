"""Alert ingestion through the real app on SQLite and PostgreSQL: dedup, grouping, routing, policy."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from warroom.alerts.models import Alert
from warroom.auth import service as auth
from warroom.core.clock import FrozenClock
from warroom.incidents.models import Incident, TimelineEvent
from warroom.jobs.models import Job
from warroom.jobs.runtime import Runtime
from warroom.web.app import create_app

pytestmark = pytest.mark.integration

AM_TOKEN = "am-token-" + "a" * 24
AM2_TOKEN = "am2-token-" + "b" * 24
PD_KEY = "pd-key-" + "c" * 24
WH_TOKEN = "wh-token-" + "d" * 24
WH_SECRET = "wh-secret-" + "e" * 24

RUNBOOK = """---
id: high-error-rate
title: High error rate
owner: devops-team
severity: P1
triggers:
  - alertname="HighErrorRate"
params:
  service: {default: api}
---
## Investigate
```bash {id=count auto}
echo checking {{ service }}
```
"""

CONFIG: dict[str, Any] = {
    "integrations": [
        {"id": "prod-am", "type": "alertmanager", "token": AM_TOKEN},
        {"id": "other-am", "type": "alertmanager", "token": AM2_TOKEN, "rate_limit_per_second": 2},
        {"id": "legacy-pd", "type": "pagerduty_v2", "token": PD_KEY},
        {
            "id": "grafana",
            "type": "webhook",
            "token": WH_TOKEN,
            "mapping": {
                "alerts": "items",
                "name": "rule",
                "status": "state",
                "labels": "tags",
                "summary": "message",
                "fingerprint": "id",
            },
        },
        {"id": "signed", "type": "webhook", "token": WH_TOKEN + "-s", "hmac_secret": WH_SECRET},
    ],
    "routes": [
        {"match": ['severity="critical"'], "severity": "P0", "group_by": ["alertname", "service"]},
        {"match": ['alertname=~"HighErrorRate|High5xxRate"'], "severity": "P1"},
        {"match": [], "severity": "P3", "group_by": ["alertname"]},
    ],
}


class AppClient:
    """A synchronous in-process client for the ASGI app (no lifespan: no worker thread)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __enter__(self) -> AppClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                return await c.request(method, url, **kwargs)

        return asyncio.run(go())

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)


def am_alert(name: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    lab = {"alertname": name, **labels}
    return {
        "status": status,
        "labels": lab,
        "annotations": {"summary": f"{name} is happening"},
        "startsAt": "2026-11-02T09:59:00Z",
        "endsAt": "2026-11-02T10:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": hashlib.sha256(json.dumps(sorted(lab.items())).encode()).hexdigest()[:16],
    }


def am_body(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "status": "firing",
        "receiver": "warroom",
        "groupKey": "{}:{}",
        "alerts": list(alerts),
    }


@pytest.fixture
def setup(
    make_runtime: Callable[..., Runtime], db_url: str, clock: FrozenClock, tmp_path: Path
) -> Iterator[tuple[AppClient, Runtime, str]]:
    rt = make_runtime(db_url, CONFIG, clock)
    books = tmp_path / "runbooks"
    books.mkdir()
    (books / "high-error-rate.md").write_text(RUNBOOK)
    rt.settings = rt.settings.with_(runbooks_path=books)
    with rt.db.transaction() as s:
        user = auth.create_user(s, name="viewer", role="viewer", now=rt.now())
        token = auth.create_token(s, user=user, name="t", now=rt.now())
    with AppClient(create_app(rt, None, run_worker=False)) as client:
        yield client, rt, token


def post_am(client: AppClient, body: Any, token: str = AM_TOKEN) -> Any:
    return client.post(
        "/api/v1/integrations/alertmanager",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


def count(rt: Runtime, model: Any, *where: Any) -> int:
    with rt.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_batch_groups_into_one_incident_per_group_with_route_severity_and_runbook(
    setup: tuple[AppClient, Runtime, str],
) -> None:
    client, rt, _ = setup
    body = am_body(
        am_alert("HighErrorRate", instance="a"),
        am_alert("HighErrorRate", instance="b"),
        am_alert("DiskFull", severity="critical", service="db", instance="x"),
        am_alert("DiskFull", severity="critical", service="db", instance="y"),
        am_alert("Noise", instance="n"),
    )
    r = post_am(client, body)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 5
    assert len(r.json()["incidents_opened"]) == 3
    with rt.db.read() as s:
        incs = {i.group_key: i for i in s.scalars(select(Incident))}
    assert {i.severity for i in incs.values()} == {"P0", "P1", "P3"}
    p1 = next(i for i in incs.values() if i.severity == "P1")
    assert p1.runbooks == ["high-error-rate"] and p1.source == "alert"
    p0 = next(i for i in incs.values() if i.severity == "P0")
    assert p0.services == ["db"]
    # diagnostics queued for the alerts that have a runbook, paging queued for each incident
    assert count(rt, Job, Job.kind == "alerts.diagnostics") == 2
    assert count(rt, Job, Job.kind == "incident.opened") == 3


def test_repeats_bump_count_and_last_seen_instead_of_new_rows(
    setup: tuple[AppClient, Runtime, str], clock: FrozenClock
) -> None:
    client, rt, _ = setup
    body = am_body(am_alert("HighErrorRate", instance="a"))
    for _ in range(3):
        assert post_am(client, body).status_code == 200
        clock.advance(timedelta(seconds=30))
    with rt.db.read() as s:
        alerts = s.scalars(select(Alert)).all()
    assert len(alerts) == 1
    assert alerts[0].count == 3
    assert alerts[0].last_seen > alerts[0].first_seen
    assert count(rt, Incident) == 1


@pytest.mark.parametrize(
    ("policy", "expected"), [("monitoring", "monitoring"), ("resolve", "resolved")]
)
def test_all_alerts_resolved_follows_policy(
    make_runtime: Callable[..., Runtime],
    db_url: str,
    clock: FrozenClock,
    policy: str,
    expected: str,
) -> None:
    rt = make_runtime(db_url, {**CONFIG, "policies": {"when_alerts_resolve": policy}}, clock)
    with AppClient(create_app(rt, None, run_worker=False)) as client:
        a, b = am_alert("Noise", instance="1"), am_alert("Noise", instance="2")
        post_am(client, am_body(a, b))
        ra = {**a, "status": "resolved", "endsAt": "2026-11-02T10:01:00Z"}
        post_am(client, am_body(ra))
        with rt.db.read() as s:
            assert s.scalars(select(Incident.status)).one() == "investigating"  # b still fires
        rb = {**b, "status": "resolved", "endsAt": "2026-11-02T10:01:00Z"}
        r = post_am(client, am_body(rb))
        assert r.json()["resolved"] == 1
        with rt.db.read() as s:
            assert s.scalars(select(Incident.status)).one() == expected


def test_resolve_older_than_refire_does_not_close_it(
    setup: tuple[AppClient, Runtime, str], clock: FrozenClock
) -> None:
    client, rt, _ = setup
    first = am_alert("Noise", instance="1")
    post_am(client, am_body(first))
    resolved = {**first, "status": "resolved", "endsAt": "2026-11-02T10:01:00Z"}
    post_am(client, am_body(resolved))
    refire = {**first, "startsAt": "2026-11-02T10:03:00Z"}
    post_am(client, am_body(refire))
    # the same (old) resolve delivered again, late
    post_am(client, am_body(resolved))
    # and a stale copy of the first firing after a newer resolve changes nothing either
    with rt.db.read() as s:
        alert = s.scalars(select(Alert)).one()
        incident = s.scalars(select(Incident)).one()
    assert alert.status == "firing"
    assert alert.count == 2
    assert incident.status == "investigating"  # back from monitoring when it re-fired


def test_one_integrations_token_is_refused_elsewhere(setup: tuple[AppClient, Runtime, str]) -> None:
    client, rt, _ = setup
    body = am_body(am_alert("Noise"))
    for token in (PD_KEY, WH_TOKEN, "", "nope"):
        r = post_am(client, body, token=token)
        assert r.status_code == 401, token
    r = client.post(
        "/api/v1/integrations/webhook/grafana",
        json={"items": []},
        headers={"Authorization": f"Bearer {AM_TOKEN}"},
    )
    assert r.status_code == 401
    r = client.post("/v2/enqueue", json={"routing_key": AM_TOKEN, "event_action": "trigger"})
    assert r.status_code == 403
    assert count(rt, Alert) == 0


def test_integration_over_its_rate_gets_429_with_retry_after_others_unaffected(
    setup: tuple[AppClient, Runtime, str],
) -> None:
    client, _rt, _ = setup
    codes = [post_am(client, am_body(am_alert("Noise")), token=AM2_TOKEN) for _ in range(20)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited, [r.status_code for r in codes]
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert post_am(client, am_body(am_alert("Noise"))).status_code == 200


def test_generic_webhook_mapping(setup: tuple[AppClient, Runtime, str]) -> None:
    client, rt, _ = setup
    body = {
        "items": [
            {
                "id": "g-1",
                "rule": "HighErrorRate",
                "state": "alerting",
                "message": "5xx up",
                "tags": {"service": "api"},
            },
            {"id": "g-2", "rule": "Other", "state": "ok", "tags": {}},
        ]
    }
    r = client.post(
        "/api/v1/integrations/webhook/grafana",
        json=body,
        headers={"Authorization": f"Bearer {WH_TOKEN}"},
    )
    assert r.status_code == 200, r.text
    with rt.db.read() as s:
        alerts = {a.fingerprint: a for a in s.scalars(select(Alert))}
        incident = s.scalars(select(Incident)).one()
    assert alerts["g-1"].status == "firing" and alerts["g-1"].labels["service"] == "api"
    assert alerts["g-2"].status == "resolved"
    assert incident.severity == "P1" and incident.runbooks == ["high-error-rate"]
    bad = {"items": [{"id": "g-3", "rule": "X", "state": "weird"}]}
    r = client.post(
        "/api/v1/integrations/webhook/grafana",
        json=bad,
        headers={"Authorization": f"Bearer {WH_TOKEN}"},
    )
    assert r.status_code == 422 and "state" in r.json()["error"]["message"]


def _signed(raw: bytes, stamp: int, secret: str = WH_SECRET) -> str:
    mac = hmac.new(secret.encode(), str(stamp).encode() + b"." + raw, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def test_hmac_signed_webhook(setup: tuple[AppClient, Runtime, str]) -> None:
    client, rt, _ = setup
    raw = json.dumps({"name": "Signed", "labels": {"env": "prod"}}).encode()
    now = int(time.time())
    url = "/api/v1/integrations/webhook/signed"
    hdr = {"Content-Type": "application/json"}
    cases = {
        "missing": {},
        "wrong secret": {"X-Warroom-Signature": _signed(raw, now, "x" * 30)},
        "replayed": {"X-Warroom-Signature": _signed(raw, now - 301)},
        "garbled": {"X-Warroom-Signature": "v1=abc"},
    }
    for name, extra in cases.items():
        r = client.post(url, content=raw, headers={**hdr, **extra})
        assert r.status_code == 401, name
    modified = raw.replace(b"prod", b"prud")
    r = client.post(
        url, content=modified, headers={**hdr, "X-Warroom-Signature": _signed(raw, now)}
    )
    assert r.status_code == 401
    assert count(rt, Alert) == 0
    r = client.post(url, content=raw, headers={**hdr, "X-Warroom-Signature": _signed(raw, now)})
    assert r.status_code == 200, r.text
    assert count(rt, Alert) == 1


def test_alert_list_needs_a_viewer(setup: tuple[AppClient, Runtime, str]) -> None:
    client, _rt, viewer = setup
    post_am(client, am_body(am_alert("Noise", instance="1"), am_alert("HighErrorRate")))
    assert client.get("/api/v1/alerts").status_code == 401
    r = client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {viewer}"})
    assert r.status_code == 200
    data = r.json()
    assert len(data["alerts"]) == 2 and data["counts"] == {"firing": 2}
    assert all(a["incident"] is not None for a in data["alerts"])
    r = client.get("/api/v1/alerts?status=bogus", headers={"Authorization": f"Bearer {viewer}"})
    assert r.status_code == 422


def test_timeline_records_firing_and_resolution(setup: tuple[AppClient, Runtime, str]) -> None:
    client, rt, _ = setup
    a = am_alert("Noise", instance="1")
    post_am(client, am_body(a))
    post_am(client, am_body({**a, "status": "resolved", "endsAt": "2026-11-02T10:01:00Z"}))
    with rt.db.read() as s:
        kinds = [e.kind for e in s.scalars(select(TimelineEvent).order_by(TimelineEvent.id))]
    assert kinds[:2] == ["incident.declared", "alert.firing"]
    assert "alert.resolved" in kinds and "incident.status" in kinds


def test_same_notification_from_two_senders_at_once_opens_one_incident(
    make_runtime: Callable[..., Runtime], db_url: str
) -> None:
    """An Alertmanager HA pair both deliver the same group at the same moment (R12, settled)."""
    from concurrent.futures import ThreadPoolExecutor

    from warroom.alerts import inbound

    rt = make_runtime(db_url, CONFIG)
    alerts = [am_alert("PairFired", service="api", instance=str(i)) for i in range(20)]
    raw = json.dumps(am_body(*alerts)).encode()
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _i: inbound.alertmanager(rt, raw, AM_TOKEN), range(6)))
    assert sum(len(r.opened) for r in results) == 1
    with rt.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 1
        counts = s.scalars(select(Alert.count)).all()
    assert sorted(counts) == [6] * 20


def test_secrets_in_alerts_are_redacted_in_titles_timeline_and_the_list(
    make_runtime: Callable[..., Runtime], sqlite_url: str, clock: FrozenClock
) -> None:
    rt = make_runtime(sqlite_url, {**CONFIG, "redact_patterns": ["hunter[0-9]+"]}, clock)
    with rt.db.transaction() as s:
        user = auth.create_user(s, name="viewer", role="viewer", now=rt.now())
        token = auth.create_token(s, user=user, name="t", now=rt.now())
    client = AppClient(create_app(rt, None, run_worker=False))
    a = am_alert("Leaky", dsn="hunter42")
    a["annotations"] = {"summary": "login failed with hunter42"}
    assert post_am(client, am_body(a)).status_code == 200
    with rt.db.read() as s:
        title = s.scalars(select(Incident.title)).one()
        texts = " ".join(e.text for e in s.scalars(select(TimelineEvent)))
    assert "hunter42" not in title and "hunter42" not in texts
    r = client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"})
    assert "hunter42" not in r.text and r.json()["alerts"][0]["name"] == "Leaky"
