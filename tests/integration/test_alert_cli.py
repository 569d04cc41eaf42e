"""The real `warroom alert …` / `warroom integration show` commands against a real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import BASE_CONFIG
from tests.support import cli, direct_token, run_server

pytestmark = pytest.mark.integration

AM_TOKEN = "cli-am-token-" + "a" * 24
PD_KEY = "cli-pd-key-" + "b" * 24
RUNBOOK = """---
id: disk-full
title: Disk full
owner: devops-team
triggers:
  - alertname="DiskFull"
---
## Investigate
```bash {id=df auto}
df -h /
```
"""
CONFIG = {
    **BASE_CONFIG,
    "people": [{**p, "contact": [{"channel": "email"}]} for p in BASE_CONFIG["people"]],
    "channels": {
        "email": {"type": "smtp", "host": "127.0.0.1", "port": 2525, "from": "warroom@example.com"}
    },
    "schedules": [
        {
            "id": "primary",
            "layers": [
                {
                    "rotation": "weekly",
                    "members": ["alice", "bob"],
                    "start": "2026-11-02T09:00:00+00:00",
                }
            ],
        }
    ],
    "escalation_policies": {
        "page-oncall": {"levels": [{"notify": ["schedule:primary"]}]},
        "notify-lead": {"levels": []},
        "ticket": {"levels": []},
        "backlog": {"levels": []},
    },
    "integrations": [
        {"id": "prod-am", "type": "alertmanager", "token": "env:CLI_AM_TOKEN"},
        {"id": "legacy-pd", "type": "pagerduty_v2", "token": PD_KEY},
        {"id": "backup", "type": "heartbeat", "token": "hb-" + "c" * 24, "expect_every": "1h"},
    ],
    "routes": [
        {
            "match": ['severity="critical"'],
            "severity": "P0",
            "escalation": "page-oncall",
            "group_by": ["alertname", "service"],
        },
        {"match": [], "severity": "P3"},
    ],
}


def test_send_list_route_and_show(tmp_path: Path, sqlite_url: str) -> None:
    books = tmp_path / "books"
    books.mkdir()
    (books / "disk-full.md").write_text(RUNBOOK)
    extra = {"CLI_AM_TOKEN": AM_TOKEN, "WARROOM_RUNBOOKS": str(books)}
    with run_server(tmp_path, db_url=sqlite_url, config=CONFIG, extra_env=extra) as server:
        env = {**server.env, "WARROOM_URL": server.url}
        # send: token taken from the config's env reference
        r = cli(
            "alert",
            "send",
            "DiskFull",
            "severity=critical",
            "service=db",
            "-a",
            "summary=disk full",
            "--integration",
            "prod-am",
            env=env,
        )
        assert r.returncode == 0, r.stderr
        assert "opened incident #1" in r.stdout
        r = cli(
            "alert",
            "send",
            "DiskFull",
            "severity=critical",
            "service=db",
            "instance=b",
            "--token",
            AM_TOKEN,
            env=env,
        )
        assert "joined incident #1" in r.stdout, r.stdout + r.stderr
        # a wrong token is refused with one line, exit 4
        r = cli("alert", "send", "DiskFull", "--token", PD_KEY, env=env)
        assert r.returncode == 4 and "Traceback" not in r.stderr
        # list needs a viewer token
        viewer = direct_token(sqlite_url, "viewer", "viewer")
        r = cli("alert", "list", "--json", env={**env, "WARROOM_TOKEN": viewer})
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        assert len(data["alerts"]) == 2 and {a["incident"] for a in data["alerts"]} == {1}
        r = cli("alert", "list", env={**env, "WARROOM_TOKEN": viewer})
        assert "DiskFull" in r.stdout and "#1" in r.stdout

        # route: dry run joins the open incident, shows runbook; a new group would open + page
        payload = tmp_path / "payload.json"
        alerts = [
            {
                "status": "firing",
                "labels": {"alertname": "DiskFull", "severity": "critical", "service": "db"},
            },
            {
                "status": "firing",
                "labels": {"alertname": "DiskFull", "severity": "critical", "service": "web"},
            },
            {"status": "firing", "labels": {"alertname": "Cosmetic"}},
        ]
        payload.write_text(json.dumps({"version": "4", "alerts": alerts}))
        r = cli("alert", "route", str(payload), "--json", env=env)
        assert r.returncode == 0, r.stderr
        rows = json.loads(r.stdout)
        assert rows[0]["action"] == "join incident #1" and rows[0]["severity"] == "P0"
        assert rows[0]["runbook"] == "disk-full" and rows[0]["auto_steps"] == ["df"]
        assert rows[1]["action"] == "open a new incident"
        assert rows[1]["would_page"] and rows[1]["would_page"][0].split()[0] in ("alice", "bob")
        assert rows[2]["severity"] == "P3" and rows[2]["runbook"] is None
        r = cli("alert", "route", str(payload), env=env)
        assert "would join incident #1" in r.stdout and "would page:" in r.stdout
        r = cli("alert", "list", "--json", env={**env, "WARROOM_TOKEN": viewer})
        assert len(json.loads(r.stdout)["alerts"]) == 2  # the dry run stored nothing
        bad = tmp_path / "bad.json"
        bad.write_text('{"version": "4", "alerts": [{"status": "firing"}]')
        r = cli("alert", "route", str(bad), env=env)
        assert r.returncode == 2 and "bad.json" in r.stderr and "Traceback" not in r.stderr

        # integration show: a receivers block Alertmanager accepts, with the resolved token
        r = cli("integration", "show", "prod-am", env=env)
        assert r.returncode == 0, r.stderr
        block = yaml.safe_load(r.stdout)
        hook = block["receivers"][0]["webhook_configs"][0]
        assert hook["url"] == f"{server.url}/api/v1/integrations/alertmanager"
        assert hook["http_config"]["authorization"]["credentials"] == AM_TOKEN
        r = cli("integration", "show", "legacy-pd", env=env)
        assert f"{server.url}/v2/enqueue" in r.stdout and PD_KEY in r.stdout
        r = cli("integration", "show", "backup", env=env)
        assert "/api/v1/integrations/heartbeat/backup" in r.stdout
        r = cli("integration", "show", "nope", env=env)
        assert r.returncode == 4 and "nope" in r.stderr
