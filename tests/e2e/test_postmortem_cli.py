"""The real `warroom` CLI against a real `warroom serve`: postmortems, action items, drills, report."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from tests.conftest import BASE_CONFIG
from tests.support import Server, cli, run_server
from warroom.auth import service as auth
from warroom.core.clock import FrozenClock
from warroom.incidents import service as incidents
from warroom.jobs.runtime import Runtime

pytestmark = pytest.mark.integration

DR = """---
id: disaster-recovery
title: Disaster Recovery
owner: devops-team
severity: P0
drill_every: 90d
last_reviewed: 2026-11-01
---

# Disaster Recovery
"""


@pytest.fixture
def served(
    tmp_path: Path, sqlite_url: str, make_runtime: Callable[..., Runtime]
) -> Iterator[tuple[Server, dict[str, str], dict[str, str]]]:
    """A server on a database holding users and one resolved P1 (#1), with a runbook folder."""
    start = datetime.now(UTC) - timedelta(days=2)
    clock = FrozenClock(start)
    rt = make_runtime(sqlite_url, clock=clock)
    tokens: dict[str, str] = {}
    with rt.db.transaction() as s:
        for name, role in (("carol", "commander"), ("vic", "viewer")):
            user = auth.create_user(s, name=name, role=role, now=start)
            tokens[name] = auth.create_token(s, user=user, name="cli", now=start)
        inc = incidents.create(
            s,
            config=rt.config,
            title="Checkout errors",
            severity="P1",
            actor="carol",
            now=start,
            services=["api"],
            customer_impact="Checkout failed for 12 minutes",
            page=False,
        )
        clock.advance(timedelta(minutes=3))
        incidents.acknowledge(s, inc, actor="carol", now=clock.now())
        clock.advance(timedelta(minutes=2))
        incidents.add_note(
            s, inc, text="password=hunter2hunter2 leaked in a log", actor="carol", now=clock.now()
        )
        clock.advance(timedelta(minutes=7))
        incidents.resolve(s, inc, actor="carol", now=clock.now())
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "disaster-recovery.md").write_text(DR)
    config: dict[str, Any] = {**BASE_CONFIG}
    with run_server(
        tmp_path, db_url=sqlite_url, config=config, extra_env={"WARROOM_RUNBOOKS": str(folder)}
    ) as server:
        env = {**server.env, "WARROOM_URL": server.url, "WARROOM_TOKEN": tokens["carol"]}
        yield server, env, tokens


def test_postmortem_create_show_export_publish(
    served: tuple[Server, dict[str, str], dict[str, str]], tmp_path: Path
) -> None:
    server, env, tokens = served
    r = cli("postmortem", "create", "1", env=env)
    assert r.returncode == 0, r.stderr
    assert "postmortem draft for incident #1" in r.stdout

    with server.client(tokens["carol"]) as http:
        resp = http.patch("/api/v1/incidents/1/postmortem", json={"lessons": "Alert on saturation"})
        assert resp.status_code == 200, resp.text
        bad = http.patch(
            "/api/v1/incidents/1/postmortem", json={"timeline": [{"at": "soon", "text": "x"}]}
        )
        assert bad.status_code == 422
        assert bad.json()["error"]["field"] == "timeline.0.at"
        assert (
            http.patch("/api/v1/incidents/1/postmortem", json={"colour": "red"}).status_code == 422
        )
        md = http.get("/api/v1/incidents/1/postmortem", headers={"Accept": "text/markdown"})
        assert md.headers["content-type"].startswith("text/markdown")
        assert http.get("/api/v1/incidents/99/postmortem").status_code == 404
        assert http.post("/api/v1/incidents/1/postmortem").status_code == 409  # exists
    r = cli("postmortem", "edit", "1", "--root-cause", "-", env=env, input="Pool *exhausted*\n")
    assert r.returncode == 0 and "root_cause" in r.stdout, r.stderr
    with server.client(tokens["vic"]) as http:
        assert http.get("/api/v1/incidents/1/postmortem").json()["severity"] == "P1"
        md = http.get("/api/v1/incidents/1/postmortem", headers={"Accept": "text/markdown"})
        assert http.post("/api/v1/incidents/1/postmortem/publish").status_code == 403

    out = tmp_path / "pm.md"
    r = cli("postmortem", "export", "1", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert text == md.text
    assert "- **Duration:** 12m" in text
    assert "- **Severity:** P1 (High)" in text
    assert "- **Impact:** Checkout failed for 12 minutes" in text
    assert "Pool *exhausted*" in text and "Alert on saturation" in text
    assert "hunter2" not in text  # the note's secret was redacted on the way in
    tokens_md = MarkdownIt("commonmark").parse(text)
    assert not [t for t in tokens_md if t.type.startswith("html")]

    shown = json.loads(cli("postmortem", "show", "1", "--json", env=env).stdout)
    assert [e["kind"] for e in shown["timeline"]] == [
        "incident.declared",
        "incident.acknowledged",
        "note",
        "incident.resolved",
    ]
    assert cli("postmortem", "publish", "1", env=env).returncode == 0
    with server.client(tokens["carol"]) as http:
        again = http.post("/api/v1/incidents/1/postmortem/publish")
        assert again.status_code == 409 and "already published" in again.text
    assert cli("postmortem", "export", "7", env=env).returncode == 4  # no such incident


def test_action_items_drills_and_report_through_the_cli(
    served: tuple[Server, dict[str, str], dict[str, str]],
) -> None:
    server, env, tokens = served
    r = cli(
        "action",
        "add",
        "Alert on pool saturation",
        "--kind",
        "monitoring",
        "--owner",
        "bob",
        "--due",
        "2020-01-01",
        "--incident",
        "1",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    r = cli(
        "action",
        "add",
        "Write the failover check",
        "--kind",
        "runbook_update",
        "--runbook",
        "disaster-recovery",
        "--json",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["runbook_hash"]) == 64
    r = cli("action", "add", "x", "--kind", "chores", env=env)
    assert r.returncode == 2 and "unknown action item kind" in r.stderr

    with server.client() as http:
        metrics = http.get("/metrics").text
    assert "warroom_action_items_overdue 1" in metrics
    assert 'warroom_incidents_acknowledged_total{severity="P1"} 1' in metrics
    assert 'warroom_response_breaches_total{severity="P1"} 0' in metrics
    assert 'warroom_deliveries{state="sent"} 0' in metrics
    r = cli("action", "list", "--overdue", env=env)
    assert r.returncode == 1  # something is overdue: CI can fail on it
    assert "Alert on pool saturation" in r.stdout and "OVERDUE" in r.stdout
    assert "failover" not in r.stdout
    assert cli("action", "done", "1", "--reason", "alert added", env=env).returncode == 0
    r = cli("action", "list", "--overdue", env=env)
    assert r.returncode == 0 and "no overdue action items" in r.stdout

    r = cli("drill", "list", "--overdue", env=env)
    assert r.returncode == 1  # CI can fail on a missed drill
    assert "due: disaster-recovery  last drill never  OVERDUE" in r.stdout
    r = cli("drill", "start", "disaster-recovery", "--json", env=env)
    assert r.returncode == 0, r.stderr
    drill = json.loads(r.stdout)
    assert drill["is_drill"] is True and drill["incident"] == 2
    r = cli(
        "drill",
        "finish",
        str(drill["id"]),
        "--rto",
        "4m30s",
        "--rpo",
        "0s",
        "--failed",
        "runbook step 3 timed out",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert "failed  RTO 4m 30s  RPO 0s  failed: runbook step 3 timed out" in r.stdout
    with server.client(tokens["carol"]) as http:
        assert http.post(f"/api/v1/drills/{drill['id']}/finish", json={}).status_code == 409
        nope = http.post(
            "/api/v1/actions", json={"title": "x", "kind": "runbook_update", "runbook": "nope"}
        )
        assert nope.status_code == 404 and nope.json()["error"]["field"] == "runbook"
    with server.client(tokens["vic"]) as http:
        assert http.post("/api/v1/drills", json={"runbook": "disaster-recovery"}).status_code == 403
        assert http.get("/api/v1/reports", params={"since": "2026-13-01"}).status_code == 422
    r = cli("drill", "finish", str(drill["id"]), "--rto", "soon", env=env)
    assert r.returncode == 2 and "not a duration" in r.stderr
    r = cli("drill", "start", "no-such-runbook", env=env)
    assert r.returncode == 4 and "runbook 'no-such-runbook' does not exist" in r.stderr

    r = cli("drill", "list", env=env)
    assert r.returncode == 0 and "drill 1  disaster-recovery  incident #2  failed" in r.stdout
    assert "due: disaster-recovery  last drill " in r.stdout and "next due" in r.stdout
    r = cli("report", "--since", "7d", "--json", env=env)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["total"] == 1  # the drill is not an incident for the numbers
    assert rep["by_severity"]["P1"]["mtta_median"] == 180.0
    assert rep["by_severity"]["P1"]["mttr_median"] == 720.0
    assert rep["compliance"]["P1"] == {"decided": 1, "within": 1, "rate": 1.0}
    assert rep["incidents_per_service"] == {"api": 1}
    assert (rep["drills_done"], rep["drills_due"]) == (1, 1)
    r = cli("report", "--since", "7d", env=env)
    assert r.returncode == 0 and "MTTA" in r.stdout and "100.0%" in r.stdout
    r = cli("report", "--since", "last tuesday", env=env)
    assert r.returncode == 2 and "since" in r.stderr
