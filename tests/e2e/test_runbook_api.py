"""Runbooks over the REST API of a real `warroom serve`: catalog, runs on an incident, roles."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import BASE_CONFIG
from tests.support import direct_token, run_server

pytestmark = pytest.mark.e2e


def test_runbook_api_roles_confirmation_and_timeline(tmp_path: Path, sqlite_url: str) -> None:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    marker = tmp_path / "SCALED"
    (folder / "svc.md").write_text(
        "---\nid: svc\ntitle: Service\nowner: devops-team\nparams:\n  who: {default: api}\n---\n"
        "## Investigate\n```bash {id=look auto}\necho looking at {{ who }} password=hunter2hunter2\n```\n"
        "- [ ] Told the team\n"
        f"## Mitigate\n```bash {{id=scale mutates}}\ntouch {marker}\necho scaled\n```\n"
    )
    (folder / "broken.md").write_bytes(b"---\nid: [\n---\n")
    with run_server(
        tmp_path, db_url=sqlite_url, config=BASE_CONFIG, extra_env={"WARROOM_RUNBOOKS": str(folder)}
    ) as server:
        viewer = server.client(direct_token(sqlite_url, "vera", "viewer"))
        responder = server.client(direct_token(sqlite_url, "rob", "responder"))
        commander = server.client(direct_token(sqlite_url, "cmd", "commander"))

        listing = viewer.get("/api/v1/runbooks").json()
        assert [r["id"] for r in listing["runbooks"]] == ["svc"]
        assert "broken.md" in listing["problems"][0]["file"]
        one = viewer.get("/api/v1/runbooks/svc").json()
        assert [s["id"] for s in one["step_list"]] == ["look", "investigate-check", "scale"]
        assert viewer.get("/api/v1/runbooks/nope").status_code == 404
        assert server.client().get("/api/v1/runbooks").status_code == 401

        number = responder.post(
            "/api/v1/incidents", json={"title": "Slow", "severity": "P2"}
        ).json()["number"]
        runs = f"/api/v1/incidents/{number}/runs"

        r = viewer.post(runs, json={"runbook": "svc", "steps": ["look"]})
        assert r.status_code == 403
        r = responder.post(
            runs,
            json={"runbook": "svc", "phases": ["investigate"], "ticked": ["investigate-check"]},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["run"]["outcome"] == "succeeded" and body["run"]["actor"] == "rob"
        assert [(s["id"], s["outcome"]) for s in body["steps"]] == [
            ("look", "succeeded"),
            ("investigate-check", "ticked"),
        ]
        assert "hunter2" not in r.text and "looking at api" in body["steps"][0]["output"]

        r = responder.post(runs, json={"runbook": "svc", "steps": ["scale"]})
        assert r.status_code == 422 and r.json()["error"]["field"] == "confirm"
        r = responder.post(runs, json={"runbook": "svc", "steps": ["scale"], "confirm": ["scale"]})
        assert r.status_code == 403 and "commander" in r.json()["error"]["message"]
        assert not marker.exists()
        r = commander.post(runs, json={"runbook": "svc", "steps": ["scale"], "confirm": ["scale"]})
        assert r.status_code == 200 and r.json()["steps"][0]["outcome"] == "succeeded"
        assert marker.exists()

        for bad in (
            {"runbook": "svc", "steps": ["nope"]},
            {"runbook": "svc", "params": {"who": "x; id"}},
            {"runbook": "svc", "params": {"zzz": "1"}},
            {"runbook": "Bad Id"},
            {"runbook": "svc", "extra": 1},
        ):
            r = responder.post(runs, json=bad)
            assert r.status_code == 422, (bad, r.text)
            assert "error" in r.json()
        assert (
            responder.post("/api/v1/incidents/9999/runs", json={"runbook": "svc"}).status_code
            == 404
        )
        assert responder.post(runs, json={"runbook": "nope"}).status_code == 404

        timeline = viewer.get(f"/api/v1/incidents/{number}/timeline").json()
        events = timeline["events"] if isinstance(timeline, dict) else timeline
        kinds = [e["kind"] for e in events if e["kind"].startswith("runbook.")]
        assert kinds == [
            "runbook.started",
            "runbook.step",
            "runbook.step",
            "runbook.finished",
            "runbook.started",
            "runbook.step",
            "runbook.finished",
        ]
        assert "hunter2" not in str(events)
