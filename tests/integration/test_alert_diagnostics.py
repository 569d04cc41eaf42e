"""Automatic diagnostics: `auto` steps run in the worker with alert labels, output redacted on the timeline."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from warroom.alerts import inbound
from warroom.bootstrap import build_registry
from warroom.core.clock import FrozenClock
from warroom.incidents.models import TimelineEvent
from warroom.jobs.models import Job
from warroom.jobs.runtime import Runtime
from warroom.jobs.worker import Worker
from warroom.runbooks.models import RunbookRun, StepRun

pytestmark = pytest.mark.integration

TOKEN = "diag-token-" + "x" * 24
RUNBOOK = """---
id: api-errors
title: API errors
owner: devops-team
severity: P1
triggers:
  - alertname="ApiErrors"
params:
  service: {default: api}
---
## Investigate
```bash {id=look auto}
echo "looking at $service with sekret-12345"
```

```bash {id=restart mutates}
echo restarted > "$MARKER"
```

```bash {id=manual-look}
echo not automatic
```
"""


def _config(**auto: Any) -> dict[str, Any]:
    return {
        "integrations": [{"id": "am", "type": "alertmanager", "token": TOKEN}],
        "routes": [{"match": [], "group_by": ["alertname", "service"]}],
        "redact_patterns": ["sekret-[0-9]+"],
        "policies": {"auto_diagnostics": {"max_concurrent": 4, **auto}},
    }


def _send(rt: Runtime, *alerts: dict[str, Any]) -> None:
    raw = json.dumps({"version": "4", "alerts": list(alerts)}).encode()
    inbound.alertmanager(rt, raw, TOKEN)


def _alert(service: str, status: str = "firing") -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "ApiErrors", "service": service},
        "startsAt": "2026-11-02T09:59:00Z",
        "endsAt": "2026-11-02T10:00:30Z" if status == "resolved" else "0001-01-01T00:00:00Z",
    }


@pytest.fixture
def rt(
    make_runtime: Callable[..., Runtime], sqlite_url: str, clock: FrozenClock, tmp_path: Path
) -> Callable[..., Runtime]:
    books = tmp_path / "books"
    books.mkdir()
    (books / "api-errors.md").write_text(RUNBOOK)

    def make(**auto: Any) -> Runtime:
        runtime = make_runtime(sqlite_url, _config(**auto), clock)
        runtime.settings = runtime.settings.with_(runbooks_path=books)
        return runtime

    return make


def _events(runtime: Runtime, kind: str) -> list[TimelineEvent]:
    with runtime.db.read() as s:
        return list(s.scalars(select(TimelineEvent).where(TimelineEvent.kind == kind)))


def test_auto_steps_run_with_alert_labels_and_land_redacted_on_the_timeline(
    rt: Callable[..., Runtime],
) -> None:
    runtime = rt()
    _send(runtime, _alert("checkout"))
    Worker(runtime, build_registry()).drain()
    steps = _events(runtime, "diagnostics.step")
    assert len(steps) == 1
    assert "looking at checkout" in steps[0].text
    assert "sekret-12345" not in steps[0].text and "sekret" not in json.dumps(steps[0].data)
    with runtime.db.read() as s:
        runs = s.scalars(select(RunbookRun)).all()
        step_ids = s.scalars(select(StepRun.step_id)).all()
    assert [r.trigger for r in runs] == ["auto"]
    assert runs[0].params == {"service": "checkout"}
    assert step_ids == ["look"]  # never the mutating step, never the manual one


def test_resolved_alert_skips_its_diagnostics(rt: Callable[..., Runtime]) -> None:
    runtime = rt()
    _send(runtime, _alert("checkout"))
    _send(runtime, _alert("checkout", status="resolved"))
    Worker(runtime, build_registry()).drain()
    with runtime.db.read() as s:
        assert s.scalars(select(RunbookRun)).all() == []
        assert s.scalars(select(Job.state).where(Job.kind == "alerts.diagnostics")).one() == "done"


def test_per_runbook_per_minute_cap(rt: Callable[..., Runtime], clock: FrozenClock) -> None:
    runtime = rt(per_runbook_per_minute=2)
    _send(runtime, *[_alert(f"svc{i}") for i in range(5)])
    worker = Worker(runtime, build_registry())
    worker.drain()
    with runtime.db.read() as s:
        assert len(s.scalars(select(RunbookRun)).all()) == 2
        waiting = s.scalars(
            select(Job).where(Job.kind == "alerts.diagnostics", Job.state == "pending")
        ).all()
    assert len(waiting) == 3
    assert all(j.run_at > clock.now() for j in waiting)
    clock.advance(timedelta(seconds=61))
    worker.drain()
    with runtime.db.read() as s:
        assert len(s.scalars(select(RunbookRun)).all()) == 4


def test_same_diagnostics_for_the_same_incident_run_once(rt: Callable[..., Runtime]) -> None:
    runtime = rt()
    a = _alert("checkout")
    b = {**a, "labels": {**a["labels"], "instance": "second"}}
    _send(runtime, a, b)  # two alerts, one group, identical parameters
    Worker(runtime, build_registry()).drain()
    with runtime.db.read() as s:
        assert len(s.scalars(select(RunbookRun)).all()) == 1
