"""Prometheus → Alertmanager → warroom, with Debian's real binaries on loopback ports.

A rule on `vector(1)` fires; Alertmanager (configured with the receiver block
`warroom integration show` prints) delivers it; one incident opens with the
route's severity and runbook, and the runbook's `auto` diagnostics land on its
timeline. The rule is then rewritten to return nothing and Prometheus reloaded:
the resolved notification arrives and the incident follows policy (resolve).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from sqlalchemy import select

from tests.conftest import BASE_CONFIG
from tests.support import cli, free_port, need_binary, run_server
from warroom.alerts.models import Alert
from warroom.bootstrap import metadata
from warroom.incidents.models import Incident, TimelineEvent
from warroom.store.db import Database

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

TOKEN = "e2e-am-token-" + "t" * 24
RUNBOOK = """---
id: checkout-errors
title: Checkout errors
owner: devops-team
severity: P2
params:
  service: {default: unknown}
---
## Investigate
```bash {id=probe auto timeout=10s}
echo "diagnosing service=$service"
```

```bash {id=rollback mutates}
echo "rolled back" > /dev/null
```
"""
CONFIG: dict[str, Any] = {
    **BASE_CONFIG,
    "integrations": [{"id": "prom", "type": "alertmanager", "token": "env:E2E_AM_TOKEN"}],
    "routes": [
        {
            "match": ['alertname="CheckoutErrors"'],
            "severity": "P1",
            "runbook": "checkout-errors",
            "group_by": ["alertname", "service"],
        },
        {"match": [], "severity": "P3"},
    ],
    "policies": {"when_alerts_resolve": "resolve"},
}
FIRING_RULE = "vector(1) > 0"
QUIET_RULE = "vector(0) > 0"

T = TypeVar("T")


def rules(expr: str) -> str:
    return yaml.safe_dump(
        {
            "groups": [
                {
                    "name": "e2e",
                    "interval": "1s",
                    "rules": [
                        {
                            "alert": "CheckoutErrors",
                            "expr": expr,
                            "for": "0s",
                            "labels": {"severity": "critical", "service": "checkout"},
                            "annotations": {"summary": "checkout 5xx above 5%"},
                        }
                    ],
                }
            ]
        }
    )


@contextlib.contextmanager
def process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{url} exited:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready:\n{log.read_text()[-2000:]}")


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 60) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_prometheus_alertmanager_warroom(tmp_path: Path, sqlite_url: str) -> None:
    prometheus = need_binary("prometheus")
    alertmanager = need_binary("prometheus-alertmanager")
    books = tmp_path / "books"
    books.mkdir()
    (books / "checkout-errors.md").write_text(RUNBOOK)
    extra = {"E2E_AM_TOKEN": TOKEN, "WARROOM_RUNBOOKS": str(books)}
    with run_server(tmp_path, db_url=sqlite_url, config=CONFIG, extra_env=extra) as server:
        # Alertmanager's receiver: exactly what `warroom integration show` prints
        shown = cli("integration", "show", "prom", env=server.env)
        assert shown.returncode == 0, shown.stderr
        am_config = yaml.safe_load(shown.stdout)
        am_config["route"].update(
            group_wait="1s",
            group_interval="1s",
            repeat_interval="1h",
            group_by=["alertname", "service"],
        )
        am_dir, prom_dir = tmp_path / "am", tmp_path / "prom"
        am_dir.mkdir()
        prom_dir.mkdir()
        (am_dir / "alertmanager.yml").write_text(yaml.safe_dump(am_config))
        am_port, prom_port = free_port(), free_port()
        rules_file = prom_dir / "rules.yml"
        rules_file.write_text(rules(FIRING_RULE))
        (prom_dir / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(rules_file)],
                    "alerting": {
                        "alertmanagers": [
                            {"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}
                        ]
                    },
                }
            )
        )
        am_args = [
            alertmanager,
            f"--config.file={am_dir / 'alertmanager.yml'}",
            f"--storage.path={am_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        prom_args = [
            prometheus,
            f"--config.file={prom_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={prom_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--web.enable-lifecycle",
            "--rules.alert.resend-delay=1s",
            "--log.level=warn",
        ]
        with (
            process(am_args, tmp_path / "am.log") as am,
            process(prom_args, tmp_path / "prom.log") as prom,
        ):
            ready(f"http://127.0.0.1:{am_port}/-/ready", am, tmp_path / "am.log")
            ready(f"http://127.0.0.1:{prom_port}/-/ready", prom, tmp_path / "prom.log")
            metadata()
            db = Database(sqlite_url)
            try:

                def incidents() -> list[Incident]:
                    with db.read() as s:
                        return list(s.scalars(select(Incident)))

                [incident] = wait_for("the incident", incidents)
                assert incident.severity == "P1"
                assert incident.runbooks == ["checkout-errors"]
                assert incident.services == ["checkout"]
                assert incident.source == "alert"

                def diagnostics() -> list[TimelineEvent]:
                    with db.read() as s:
                        return list(
                            s.scalars(
                                select(TimelineEvent).where(
                                    TimelineEvent.incident_id == incident.id,
                                    TimelineEvent.kind == "diagnostics.step",
                                )
                            )
                        )

                [step] = wait_for("diagnostics on the timeline", diagnostics)
                assert "diagnosing service=checkout" in step.text
                assert step.data["step"] == "probe"  # never the mutating rollback

                # the rule stops firing: Prometheus sends resolved, Alertmanager delivers it
                rules_file.write_text(rules(QUIET_RULE))
                r = httpx.post(f"http://127.0.0.1:{prom_port}/-/reload", timeout=10)
                assert r.status_code == 200, r.text

                def resolved() -> Incident | None:
                    with db.read() as s:
                        found = s.get(Incident, incident.id)
                        return found if found is not None and found.status == "resolved" else None

                done = wait_for("the incident to follow policy", resolved)
                assert done.resolved_at is not None
                with db.read() as s:
                    alerts = list(s.scalars(select(Alert)))
                    kinds = list(
                        s.scalars(
                            select(TimelineEvent.kind).where(
                                TimelineEvent.incident_id == incident.id
                            )
                        )
                    )
                assert len(alerts) == 1 and alerts[0].status == "resolved"
                assert alerts[0].labels["service"] == "checkout"
                assert "alert.resolved" in kinds and "incident.resolved" in kinds
                assert len(incidents()) == 1
            finally:
                db.dispose()
        assert "Traceback" not in server.log()
