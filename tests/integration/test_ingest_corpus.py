"""R14: every malformed payload in tests/corpus/ingest gets a 4xx naming the problem; nothing stored."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from tests.integration.test_ingest import AM_TOKEN, CONFIG, PD_KEY, WH_TOKEN, AppClient
from warroom.alerts.models import Alert
from warroom.core.clock import FrozenClock
from warroom.incidents.models import Incident
from warroom.jobs.models import Job
from warroom.jobs.runtime import Runtime
from warroom.web.app import create_app

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "ingest" / "cases.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(CORPUS.read_text())["cases"]
ENDPOINTS = {
    "alertmanager": "/api/v1/integrations/alertmanager",
    "pagerduty": "/v2/enqueue",
    "webhook": "/api/v1/integrations/webhook/raw",
}
RAW_WEBHOOK = {"id": "raw", "type": "webhook", "token": WH_TOKEN + "-raw"}


def _generate(name: str) -> bytes:
    if name == "deep_nesting":
        return b'{"version":"4","alerts":[],"x":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    if name == "huge_body":
        return b'{"version":"4","alerts":[],"pad":"' + b"x" * (6 * 1024 * 1024) + b'"}'
    if name == "huge_label":
        alert = {"status": "firing", "labels": {"alertname": "X", "big": "v" * (1024 * 1024)}}
        return json.dumps({"version": "4", "alerts": [alert]}).encode()
    if name == "many_alerts":
        one = '{"status":"firing","labels":{"a":"b"}}'
        return ('{"version":"4","alerts":[' + ",".join([one] * 100_000) + "]}").encode()
    raise AssertionError(name)


def _body(case: dict[str, Any]) -> bytes:
    if "generate" in case:
        return _generate(case["generate"])
    if "body_b64" in case:
        return base64.b64decode(case["body_b64"])
    return str(case["body"]).replace("{PD_KEY}", PD_KEY).encode()


@pytest.fixture(scope="module")
def app_rt(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.conftest import BASE_CONFIG
    from warroom.bootstrap import build_runtime
    from warroom.config.loader import parse_config
    from warroom.settings import Settings
    from warroom.store.migrate import upgrade

    tmp = tmp_path_factory.mktemp("corpus")
    config = {**CONFIG, "integrations": [*CONFIG["integrations"], RAW_WEBHOOK]}
    settings = Settings(
        database_url=f"sqlite:///{tmp / 'w.db'}",
        config_path=tmp / "warroom.yaml",
        runbooks_path=tmp / "runbooks",
        secret_key="test-" + "k" * 40,
    )
    rt = build_runtime(
        settings,
        config=parse_config({**BASE_CONFIG, **config}),
        clock=FrozenClock(datetime(2026, 11, 2, 10, 0, tzinfo=UTC)),
    )
    upgrade(rt.db)
    yield AppClient(create_app(rt, None, run_worker=False)), rt
    rt.db.dispose()


def test_corpus_has_at_least_25_classes() -> None:
    assert len(CASES) >= 25
    assert {c["endpoint"] for c in CASES} == set(ENDPOINTS)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_malformed_payload_gets_4xx_naming_it_and_stores_nothing(
    case: dict[str, Any], app_rt: tuple[AppClient, Runtime]
) -> None:
    client, rt = app_rt
    headers = {**case.get("headers", {})}
    if case["content_type"]:
        headers["Content-Type"] = case["content_type"]
    if case["endpoint"] == "alertmanager":
        headers["Authorization"] = f"Bearer {AM_TOKEN}"
    elif case["endpoint"] == "webhook":
        headers["Authorization"] = f"Bearer {WH_TOKEN}-raw"
    r = client.post(ENDPOINTS[case["endpoint"]], content=_body(case), headers=headers)
    assert r.status_code in case["expect"], (r.status_code, r.text[:300])
    assert "Traceback" not in r.text and 'File "' not in r.text
    body = r.json()
    if case["endpoint"] == "pagerduty" and "error" not in body:
        # (bodies over 5 MB and compressed bodies are refused by the middleware, before any route)
        assert body["status"] == "invalid event"
        message = body["message"] + " " + " ".join(body.get("errors", []))
    else:
        message = body["error"]["message"] + " " + str(body["error"].get("field"))
    if case.get("mentions"):
        assert case["mentions"].lower() in message.lower(), message
    with rt.db.read() as s:
        for model in (Alert, Incident, Job):
            assert s.scalar(select(func.count()).select_from(model)) == 0


def test_crlf_in_a_summary_never_reaches_the_incident_title(
    make_runtime: Callable[..., Runtime], sqlite_url: str, clock: FrozenClock
) -> None:
    rt = make_runtime(sqlite_url, CONFIG, clock)
    client = AppClient(create_app(rt, None, run_worker=False))
    alert = {
        "status": "firing",
        "labels": {"alertname": "Inject", "x": "1"},
        "annotations": {"summary": "line one\r\nBcc: victim@example.com"},
    }
    r = client.post(
        ENDPOINTS["alertmanager"],
        json={"version": "4", "alerts": [alert]},
        headers={"Authorization": f"Bearer {AM_TOKEN}"},
    )
    assert r.status_code == 200, r.text
    with rt.db.read() as s:
        title = s.scalars(select(Incident.title)).one()
    assert "\r" not in title and "\n" not in title
    assert title.startswith("Inject: line one Bcc:")
