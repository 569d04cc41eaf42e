"""A crash right after a declare loses nothing: the incident, its events and its jobs survive."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import BASE_CONFIG
from tests.support import ROOT, cli, direct_token, run_server, warroom_bin
from warroom.incidents.models import Incident, TimelineEvent
from warroom.jobs.models import Job, JobState
from warroom.store.db import Database

pytestmark = pytest.mark.integration

CONFIG: dict[str, Any] = {**BASE_CONFIG, "severities": {"P0": {"respond_within": "1s"}}}


def _rows(db_url: str) -> tuple[list[Incident], list[TimelineEvent], list[Job]]:
    db = Database(db_url)
    try:
        with db.read() as s:
            return (
                list(s.scalars(select(Incident))),
                list(s.scalars(select(TimelineEvent).order_by(TimelineEvent.id))),
                list(s.scalars(select(Job).order_by(Job.id))),
            )
    finally:
        db.dispose()


def test_sigkill_after_201_keeps_incident_events_and_jobs_which_run_once(
    tmp_path: Path, db_url: str
) -> None:
    # API only: nothing may run the jobs before the crash, so they must survive it
    with run_server(tmp_path, db_url=db_url, config=CONFIG, worker=False) as server:
        token = direct_token(db_url, "resp", "responder")
        with server.client(token) as c:
            resp = c.post("/api/v1/incidents", json={"title": "db down", "severity": "P0"})
        assert resp.status_code == 201, resp.text
        number = resp.json()["number"]
        server.kill()  # SIGKILL the process group

        incidents, events, jobs = _rows(db_url)
        assert [i.number for i in incidents] == [number]
        assert [e.kind for e in events] == ["incident.declared"]
        kinds = {j.kind for j in jobs}
        assert {"incident.opened", "incident.breach_check"} <= kinds
        assert all(j.state == JobState.PENDING for j in jobs)
        survivors = {j.id for j in jobs}

        server.restart()  # same database, still API only
        with server.client(token) as c:
            assert c.get(f"/api/v1/incidents/{number}").json()["title"] == "db down"
        # a worker process of its own (scale-out mode) picks the surviving jobs up
        worker = subprocess.Popen(
            [warroom_bin(), "worker"],
            env=server.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd=ROOT,
        )
        try:
            for _ in range(300):  # bounded wait for the breach check to have run
                _i, events, jobs = _rows(db_url)
                if any(e.kind == "clock.breached" for e in events) and all(
                    j.state in (JobState.DONE, JobState.CANCELLED, JobState.DEAD)
                    for j in jobs
                    if j.id in survivors
                ):
                    break
                time.sleep(0.1)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=20)
        r = cli("worker", "--once", env=server.env)  # another pass must change nothing
        assert r.returncode == 0, r.stderr

    _i, events, jobs = _rows(db_url)
    assert [e.kind for e in events].count("clock.breached") == 1
    breach = next(j for j in jobs if j.kind == "incident.breach_check")
    assert breach.state == JobState.DONE and breach.attempts == 1
    for job in (j for j in jobs if j.id in survivors):
        # each job that survived the crash ran at most once; none is stuck pending or leased
        assert job.state in (JobState.DONE, JobState.CANCELLED, JobState.DEAD), job.kind
        assert job.attempts <= 1, (job.kind, job.attempts)


def test_crash_between_commit_and_answer_keeps_the_incident(
    tmp_path: Path, sqlite_url: str
) -> None:
    """WARROOM_FAULT=after_declare_commit: the client sees no answer, the incident exists."""
    extra = {"WARROOM_FAULT": "after_declare_commit"}
    with run_server(tmp_path, db_url=sqlite_url, config=CONFIG, extra_env=extra) as server:
        token = direct_token(sqlite_url, "resp", "responder")
        with server.client(token) as c, contextlib.suppress(httpx.HTTPError):
            c.post("/api/v1/incidents", json={"title": "half answered", "severity": "P2"})
        assert server.process.wait(timeout=20) == 137
    with run_server(tmp_path, db_url=sqlite_url, config=CONFIG) as server:
        token = direct_token(sqlite_url, "resp", "responder")
        with server.client(token) as c:
            body = c.get("/api/v1/incidents").json()
    assert [i["title"] for i in body["items"]] == ["half answered"]
