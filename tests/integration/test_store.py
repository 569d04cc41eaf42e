"""Store and job engine on real SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from warroom.core.clock import FrozenClock
from warroom.jobs import queue
from warroom.jobs.models import Job, JobState
from warroom.jobs.runtime import Runtime
from warroom.jobs.worker import Registry, RetryLater, Worker
from warroom.store import audit, counters, migrate
from warroom.store.models import AuditEntry

pytestmark = pytest.mark.integration


def test_migrations_reach_the_newest_revision(
    db_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(db_url)
    assert migrate.is_current(rt.db)
    migrate.upgrade(rt.db)  # idempotent
    assert migrate.is_current(rt.db)


def test_sqlite_runs_in_wal_with_foreign_keys(
    sqlite_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(sqlite_url)
    with rt.db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_counters_are_sequential(db_url: str, make_runtime: Callable[..., Runtime]) -> None:
    rt = make_runtime(db_url)
    with rt.db.transaction() as s:
        assert [counters.next_value(s, "incident") for _ in range(3)] == [1, 2, 3]


def test_job_dedup_claim_lease_and_backoff(
    db_url: str, make_runtime: Callable[..., Runtime], clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, clock=clock)
    now = clock.now()
    with rt.db.transaction() as s:
        assert queue.enqueue(s, kind="t", payload={"n": 1}, now=now, dedup_key="once") is not None
        assert queue.enqueue(s, kind="t", payload={"n": 2}, now=now, dedup_key="once") is None
        queue.enqueue(s, kind="t", payload={"n": 3}, now=now, run_at=now + timedelta(minutes=5))
    with rt.db.transaction() as s:
        claimed = queue.claim(
            s, worker_id="w1", kinds={"t": 1}, now=now, lease=timedelta(seconds=30)
        )
        assert [j.payload["n"] for j in claimed] == [1]
    with rt.db.transaction() as s:  # leased: nobody else gets it
        assert (
            queue.claim(s, worker_id="w2", kinds={"t": 1}, now=now, lease=timedelta(seconds=30))
            == []
        )
    later = now + timedelta(seconds=31)
    with rt.db.transaction() as s:  # lease expired: w1 "died", w2 takes it over
        again = queue.claim(
            s, worker_id="w2", kinds={"t": 1}, now=later, lease=timedelta(seconds=30)
        )
        assert [j.payload["n"] for j in again] == [1]
        assert again[0].attempts == 2
    with rt.db.transaction() as s:  # the old owner cannot finish it any more
        assert not queue.finish(s, again[0].id, worker_id="w1", now=later)
        assert queue.finish(s, again[0].id, worker_id="w2", now=later)


def test_unknown_job_kinds_and_newer_versions_are_left_alone(
    db_url: str, make_runtime: Callable[..., Runtime], clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, clock=clock)
    with rt.db.transaction() as s:
        queue.enqueue(s, kind="t", payload={}, now=clock.now(), version=2)
        queue.enqueue(s, kind="other", payload={}, now=clock.now())
    with rt.db.transaction() as s:
        assert (
            queue.claim(
                s, worker_id="w", kinds={"t": 1}, now=clock.now(), lease=timedelta(seconds=5)
            )
            == []
        )


def test_backoff_grows_with_jitter_and_cap() -> None:
    rng = random.Random(1)
    delays = [queue.backoff(n, base=1, cap=8, rng=rng) for n in range(1, 8)]
    assert all(d <= 8 for d in delays)
    assert delays[0] <= 1 and delays[3] >= 4  # 8 * [0.5, 1]
    spread = {round(queue.backoff(3, base=1, cap=60, rng=rng), 3) for _ in range(20)}
    assert len(spread) > 10  # no lockstep retries


def test_worker_retries_then_marks_dead(
    db_url: str, make_runtime: Callable[..., Runtime], clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, clock=clock)
    calls: list[int] = []

    def flaky(_rt: Runtime, job: Job) -> None:
        calls.append(job.attempts)
        raise RetryLater("receiver down", delay=10)

    reg = Registry()
    reg.handler("flaky", flaky)
    with rt.db.transaction() as s:
        queue.enqueue(s, kind="flaky", payload={}, now=clock.now(), max_attempts=3)
    w = Worker(rt, reg, worker_id="w")
    for _ in range(5):
        w.run_once()
        clock.advance(timedelta(seconds=11))
    assert calls == [1, 2, 3]
    with rt.db.read() as s:
        job = s.query(Job).one()
        assert job.state == JobState.DEAD
        assert job.last_error == "receiver down"


def test_audit_chain_detects_an_edited_row(
    db_url: str, make_runtime: Callable[..., Runtime], clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, clock=clock)
    with rt.db.transaction() as s:
        for i in range(5):
            audit.record(s, at=clock.now(), actor="alice", action="incident.ack", target=f"#{i}")
    with rt.db.read() as s:
        assert audit.verify(s).ok
    with rt.db.transaction() as s:
        s.execute(update(AuditEntry).where(AuditEntry.id == 3).values(actor="mallory"))
    with rt.db.read() as s:
        result = audit.verify(s)
        assert not result.ok
        assert "entry 3" in result.problems[0]
