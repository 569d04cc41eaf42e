"""The two-person rule over the REST API: a P0 mutating step runs only when a second commander asks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import BASE_CONFIG
from tests.support import direct_token, run_server

pytestmark = pytest.mark.e2e


def test_p0_mutating_step_needs_a_second_commander(tmp_path: Path, sqlite_url: str) -> None:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    marker = tmp_path / "FAILED_OVER"
    (folder / "dr.md").write_text(
        "---\nid: dr\ntitle: Failover\nowner: devops-team\n---\n"
        f"## Mitigate\n```bash {{id=failover mutates}}\ntouch {marker}\n```\n"
    )
    config = {
        **BASE_CONFIG,
        "policies": {"mutating_steps": {"P0": "two-person", "default": "commander"}},
    }
    with run_server(
        tmp_path, db_url=sqlite_url, config=config, extra_env={"WARROOM_RUNBOOKS": str(folder)}
    ) as server:
        first = server.client(direct_token(sqlite_url, "cmd1", "commander"))
        second = server.client(direct_token(sqlite_url, "cmd2", "commander"))
        number = first.post(
            "/api/v1/incidents", json={"title": "Region down", "severity": "P0"}
        ).json()["number"]
        runs = f"/api/v1/incidents/{number}/runs"
        body = {"runbook": "dr", "steps": ["failover"], "confirm": ["failover"]}

        r = first.post(runs, json=body)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "awaiting_approval"
        assert r.json()["waiting_for_second_commander"] == ["failover"]
        # asking again yourself is not an approval
        assert first.post(runs, json=body).json()["state"] == "awaiting_approval"
        assert not marker.exists()

        r = second.post(runs, json=body)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "finished"
        assert r.json()["steps"][0]["outcome"] == "succeeded"
        assert marker.exists()

        kinds = [
            e["kind"] for e in first.get(f"/api/v1/incidents/{number}/timeline").json()["events"]
        ]
        assert kinds.count("runbook.step_requested") == 2
        assert "runbook.step" in kinds
