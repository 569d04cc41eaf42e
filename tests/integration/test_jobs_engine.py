"""The job engine on SQLite and PostgreSQL: retries, dead jobs, leases, dedup, exactly-once runs."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import BASE_CONFIG
from tests.support import base_env, cli, write_config
from warroom.auth import service as auth
from warroom.core.clock import FrozenClock
from warroom.jobs import queue
from warroom.jobs.models import Job, JobState
from warroom.jobs.runtime import Runtime
from warroom.jobs.worker import Registry, RetryLater, Worker
from warroom.store.models import AuditEntry
from warroom.web.app import create_app

pytestmark = pytest.mark.integration


def _enqueue(rt: Runtime, kind: str, **kw: Any) -> int:
    with rt.db.transaction() as s:
        job = queue.enqueue(s, kind=kind, payload=kw.pop("payload", {}), now=rt.now(), **kw)
        assert job is not None
        return job.id


def _job(rt: Runtime, job_id: int) -> Job:
    with rt.db.read() as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job


def _api(rt: Runtime, method: str, path: str, token: str) -> httpx.Response:
    app = create_app(rt, None, run_worker=False)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.request(method, path, headers={"Authorization": f"Bearer {token}"})

    return asyncio.run(go())


def test_failing_job_backs_off_then_is_dead_visible_and_retryable_by_an_admin(
    make_runtime: Callable[..., Runtime], db_url: str, clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, clock=clock)
    registry = Registry()
    calls: list[int] = []

    def boom(_rt: Runtime, job: Job) -> None:
        calls.append(job.attempts)
        raise RuntimeError("provider said no; token=xoxb-1234567890-abcdefghij")

    registry.handler("test.boom", boom, backoff_base=1.0, backoff_cap=4.0)
    job_id = _enqueue(rt, "test.boom", max_attempts=3)
    worker = Worker(rt, registry, worker_id="w1")
    delays = []
    for _ in range(10):  # bounded; each round moves the clock to the job's next run
        if worker.run_once() == 0:
            job = _job(rt, job_id)
            if job.state == JobState.DEAD:
                break
            delays.append((job.run_at - clock.now()).total_seconds())
            clock.set(job.run_at)
    job = _job(rt, job_id)
    assert job.state == JobState.DEAD and job.attempts == 3 and calls == [1, 2, 3]
    assert job.last_error and "xoxb-1234567890" not in job.last_error  # redacted
    # backoff: base 1 s then 2 s, each jittered into [50 %, 100 %] of its step
    assert len(delays) == 2 and 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0

    with rt.db.transaction() as s:
        admin = auth.create_user(s, name="root", role="admin", now=rt.now())
        admin_token = auth.create_token(s, user=admin, name="t", now=rt.now())
        viewer = auth.create_user(s, name="vic", role="commander", now=rt.now())
        other_token = auth.create_token(s, user=viewer, name="t", now=rt.now())
    assert _api(rt, "GET", "/api/v1/jobs?state=dead", other_token).status_code == 403
    listed = _api(rt, "GET", "/api/v1/jobs?state=dead", admin_token).json()
    assert [j["id"] for j in listed["items"]] == [job_id] and listed["total"] == 1
    assert "payload" not in listed["items"][0]
    assert _api(rt, "GET", "/api/v1/jobs?state=zombie", admin_token).status_code == 422

    resp = _api(rt, "POST", f"/api/v1/jobs/{job_id}/retry", admin_token)
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "pending" and resp.json()["attempts"] == 0
    assert _api(rt, "POST", f"/api/v1/jobs/{job_id}/retry", admin_token).status_code == 409
    assert _api(rt, "POST", "/api/v1/jobs/999999/retry", admin_token).status_code == 404
    with rt.db.read() as s:
        actions = list(s.scalars(select(AuditEntry.action)))
    assert actions == ["job.retry"]


def test_expired_lease_is_claimed_again_and_a_finished_job_is_not(
    make_runtime: Callable[..., Runtime], db_url: str, clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, clock=clock)
    job_id = _enqueue(rt, "test.lease")
    lease = timedelta(seconds=30)
    with rt.db.transaction() as s:
        first = queue.claim(
            s, worker_id="dead-worker", kinds={"test.lease": 1}, now=rt.now(), lease=lease
        )
    assert [j.id for j in first] == [job_id]
    with rt.db.transaction() as s:  # still leased: nobody else gets it
        assert (
            queue.claim(s, worker_id="w2", kinds={"test.lease": 1}, now=rt.now(), lease=lease) == []
        )
    clock.advance(lease + timedelta(seconds=1))
    with rt.db.transaction() as s:
        again = queue.claim(s, worker_id="w2", kinds={"test.lease": 1}, now=rt.now(), lease=lease)
    assert [j.id for j in again] == [job_id] and again[0].attempts == 2
    with rt.db.transaction() as s:
        # the first worker wakes up: it lost the lease, so its finish does nothing
        assert not queue.finish(s, job_id, worker_id="dead-worker", now=rt.now())
        assert queue.finish(s, job_id, worker_id="w2", now=rt.now())
    clock.advance(timedelta(hours=1))
    with rt.db.transaction() as s:
        assert (
            queue.claim(s, worker_id="w3", kinds={"test.lease": 1}, now=rt.now(), lease=lease) == []
        )


def test_dedup_key_and_unknown_versions(
    make_runtime: Callable[..., Runtime], db_url: str, clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, clock=clock)
    with rt.db.transaction() as s:
        assert queue.enqueue(s, kind="k", payload={}, now=rt.now(), dedup_key="once") is not None
        assert queue.enqueue(s, kind="k", payload={}, now=rt.now(), dedup_key="once") is None
        queue.enqueue(s, kind="k", payload={}, now=rt.now(), version=2)  # from a newer release
    with rt.db.transaction() as s:
        claimed = queue.claim(
            s, worker_id="w", kinds={"k": 1}, now=rt.now(), lease=timedelta(seconds=30)
        )
    assert [j.version for j in claimed] == [1]  # the v2 job waits for a worker that knows it


def test_two_workers_run_each_job_exactly_once(
    make_runtime: Callable[..., Runtime], db_url: str
) -> None:
    rt = make_runtime(db_url)
    ran: list[int] = []
    lock = threading.Lock()

    def record(_rt: Runtime, job: Job) -> None:
        with lock:
            ran.append(int(job.payload["n"]))

    registry = Registry()
    registry.handler("test.count", record)
    with rt.db.transaction() as s:
        for n in range(40):
            queue.enqueue(s, kind="test.count", payload={"n": n}, now=rt.now())
    workers = [Worker(rt, registry, worker_id=f"w{i}") for i in range(2)]
    threads = [threading.Thread(target=w.drain, kwargs={"max_rounds": 50}) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(ran) == list(range(40))  # none lost, none twice
    with rt.db.read() as s:
        states = set(s.scalars(select(Job.state)))
    assert states == {JobState.DONE}


def test_retry_later_with_permanent_goes_dead_at_once(
    make_runtime: Callable[..., Runtime], sqlite_url: str, clock: FrozenClock
) -> None:
    rt = make_runtime(sqlite_url, clock=clock)
    registry = Registry()

    def refuse(_rt: Runtime, _job: Job) -> None:
        raise RetryLater("receiver answered 400", permanent=True)

    registry.handler("test.400", refuse)
    job_id = _enqueue(rt, "test.400")
    Worker(rt, registry, worker_id="w").run_once()
    job = _job(rt, job_id)
    assert job.state == JobState.DEAD and job.attempts == 1
    assert job.last_error == "receiver answered 400"


def test_backoff_grows_to_the_cap_with_jitter() -> None:
    rng = random.Random(7)
    steps = [queue.backoff(a, base=1.0, cap=8.0, rng=rng) for a in range(1, 8)]
    for attempt, delay in enumerate(steps, start=1):
        step = min(8.0, 2 ** (attempt - 1))
        assert step / 2 <= delay <= step
    spread = {round(queue.backoff(3, base=1.0, cap=8.0, rng=rng), 3) for _ in range(20)}
    assert len(spread) > 10  # jobs failing together do not retry in lockstep


def test_jobs_cli_lists_dead_jobs_and_retries_one(
    make_runtime: Callable[..., Runtime], sqlite_url: str, tmp_path: Path
) -> None:
    rt = make_runtime(sqlite_url)
    job_id = _enqueue(rt, "test.cli")
    with rt.db.transaction() as s:
        job = s.get(Job, job_id)
        assert job is not None
        job.state, job.attempts, job.last_error = JobState.DEAD, 10, "HTTP 500 from receiver"
    env = base_env(sqlite_url, write_config(tmp_path / "warroom.yaml", BASE_CONFIG))
    r = cli("jobs", "dead", "--json", env=env)
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["items"]
    assert row["id"] == job_id and row["last_error"] == "HTTP 500 from receiver"
    r = cli("jobs", "retry", str(job_id), env=env)
    assert r.returncode == 0, r.stderr
    assert _job(rt, job_id).state == JobState.PENDING
    r = cli("jobs", "retry", str(job_id), env=env)
    assert r.returncode == 2 and "not dead" in r.stderr
