"""Incident lifecycle services and the breach check, on SQLite and PostgreSQL, with a frozen clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from warroom.core.clock import FrozenClock, as_utc
from warroom.core.errors import Conflict, InvalidInput
from warroom.incidents import jobs as incident_jobs
from warroom.incidents import service, timeline
from warroom.incidents.models import Incident
from warroom.jobs.models import Job, JobState
from warroom.jobs.runtime import Runtime
from warroom.jobs.worker import Registry, Worker

pytestmark = pytest.mark.integration


def _worker(rt: Runtime) -> Worker:
    registry = Registry()
    incident_jobs.register(registry)  # this domain's kinds only
    return Worker(rt, registry, worker_id="test")


def _declare(rt: Runtime, severity: str = "P0", title: str = "db down", **kw: object) -> int:
    with rt.db.transaction() as s:
        inc = service.create(
            s,
            config=rt.config,
            title=title,
            severity=severity,
            actor="alice",
            now=rt.now(),
            **kw,  # type: ignore[arg-type]
        )
        return inc.number


def _kinds(rt: Runtime, number: int) -> list[str]:
    with rt.db.read() as s:
        inc = service.get_or_raise(s, number=number)
        return [e.kind for e in timeline.events(s, inc.id)]


def test_declare_numbers_sequentially_and_starts_the_clock_from_the_policy(
    make_runtime: Callable[..., Runtime], db_url: str, clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, clock=clock)
    first = _declare(rt, "P2", services=["api", "api"], runbooks=["high-cpu-usage"])
    second = _declare(rt, "p0")
    assert (first, second) == (1, 2)
    with rt.db.read() as s:
        inc = service.get_or_raise(s, number=first)
        assert inc.services == ["api"]
        assert as_utc(inc.respond_by) == clock.now() + timedelta(hours=4)  # README: P2 4 h
        p0 = service.get_or_raise(s, number=second)
        assert as_utc(p0.respond_by) == clock.now() + timedelta(minutes=15)
        kinds = sorted(s.scalars(select(Job.kind).where(Job.incident_id == inc.id)))
    assert kinds == ["incident.breach_check", "incident.opened"]
    with pytest.raises(InvalidInput) as err:
        _declare(rt, "SEV1")
    assert err.value.field == "severity"
    with pytest.raises(InvalidInput):
        _declare(rt, "P1", title=" \n\t ")


def test_breach_recorded_once_when_unacknowledged_and_never_when_acknowledged(
    make_runtime: Callable[..., Runtime], db_url: str, clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, {"severities": {"P0": {"respond_within": "2s"}}}, clock=clock)
    late, acked = _declare(rt), _declare(rt)
    with rt.db.transaction() as s:
        service.acknowledge(s, service.get_or_raise(s, number=acked), actor="bob", now=rt.now())
    worker = _worker(rt)
    assert worker.run_once() == 0  # nothing due yet: the clock has not moved
    clock.advance(timedelta(seconds=3))
    worker.drain()
    clock.advance(timedelta(minutes=5))
    worker.drain()
    assert _kinds(rt, late).count(timeline.BREACH) == 1
    assert timeline.BREACH not in _kinds(rt, acked)
    with rt.db.read() as s:
        states = set(s.scalars(select(Job.state).where(Job.kind == service.JOB_BREACH_CHECK)))
    assert states == {JobState.DONE}


def test_severity_change_recomputes_the_clock_and_the_old_check_stands_down(
    make_runtime: Callable[..., Runtime], db_url: str, clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, clock=clock)
    n = _declare(rt, "P0")  # respond within 15 min
    clock.advance(timedelta(minutes=10))
    with rt.db.transaction() as s:
        inc = service.get_or_raise(s, number=n)
        service.set_severity(s, inc, config=rt.config, severity="P1", actor="carol", now=rt.now())
        assert as_utc(inc.respond_by) == clock.now() + timedelta(hours=1)
    worker = _worker(rt)
    clock.advance(timedelta(minutes=10))  # past the old P0 clock, inside the new P1 one
    worker.drain()
    assert timeline.BREACH not in _kinds(rt, n)
    clock.advance(timedelta(hours=1))
    worker.drain()
    assert _kinds(rt, n).count(timeline.BREACH) == 1
    assert _kinds(rt, n)[:2] == [timeline.DECLARED, timeline.SEVERITY]


def test_status_lifecycle_reopen_and_conflicts(
    make_runtime: Callable[..., Runtime], db_url: str, clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, clock=clock)
    n = _declare(rt, "P1")
    with rt.db.transaction() as s:
        inc = service.get_or_raise(s, number=n)
        service.set_status(s, inc, status="monitoring", actor="bob", now=rt.now())
        assert inc.mitigated_at is not None
        service.resolve(s, inc, actor="carol", now=rt.now())
        assert inc.resolved_at is not None and inc.acknowledged_by == "carol"
        with pytest.raises(Conflict):
            service.resolve(s, inc, actor="carol", now=rt.now())
        # resolving counts as the acknowledgement; a late ack changes nothing
        assert service.acknowledge(s, inc, actor="bob", now=rt.now()) is False
        service.set_status(s, inc, status="investigating", actor="bob", now=rt.now())
        assert inc.resolved_at is None and inc.is_open
        with pytest.raises(InvalidInput) as err:
            service.set_status(s, inc, status="on-fire", actor="bob", now=rt.now())
        assert err.value.field == "status"
        with pytest.raises(InvalidInput):
            service.set_role(s, inc, role="king", person="bob", actor="bob", now=rt.now())
        service.set_role(s, inc, role="responder", person="bob", actor="carol", now=rt.now())
        service.set_role(s, inc, role="responder", person="bob", actor="carol", now=rt.now())
        assert inc.responders == ["bob"]
    assert _kinds(rt, n) == [
        timeline.DECLARED,
        timeline.STATUS,
        timeline.RESOLVED,
        timeline.REOPENED,
        timeline.ROLE,
        timeline.ROLE,
    ]


def test_list_filters_and_paginates_with_a_total(
    make_runtime: Callable[..., Runtime], db_url: str, clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, clock=clock)
    _declare(rt, "P1", title="100% CPU on web", services=["web"])
    _declare(rt, "P2", title="slow api", services=["api"])
    third = _declare(rt, "P1", title="disk full on db1", services=["db"])
    with rt.db.transaction() as s:
        service.resolve(s, service.get_or_raise(s, number=third), actor="c", now=rt.now())
    with rt.db.read() as s:

        def numbers(**kw: object) -> tuple[list[int], int]:
            rows, total = service.list_incidents(s, **kw)  # type: ignore[arg-type]
            return [r.number for r in rows], total

        assert numbers() == ([3, 2, 1], 3)
        assert numbers(open_only=True) == ([2, 1], 2)
        assert numbers(severity="p1") == ([3, 1], 2)
        assert numbers(status="resolved") == ([3], 1)
        assert numbers(service="api") == ([2], 1)
        assert numbers(query="100%") == ([1], 1)
        assert numbers(query="%") == ([1], 1)  # a literal percent sign, not a wildcard
        assert numbers(query="_") == ([], 0)
        assert numbers(limit=1, offset=1) == ([2], 3)
        count = s.scalar(select(Incident.id).where(Incident.number == 1))
        assert count is not None


def test_timeline_rows_cannot_be_changed_or_deleted(
    make_runtime: Callable[..., Runtime], db_url: str, clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, clock=clock)
    _declare(rt, "P2")
    for statement in (
        "UPDATE timeline_events SET text = 'nothing happened'",
        "DELETE FROM timeline_events",
    ):
        with pytest.raises(DBAPIError, match="append-only"), rt.db.engine.begin() as conn:
            conn.execute(text(statement))
    assert _kinds(rt, 1) == [timeline.DECLARED]


def test_concurrent_declares_get_distinct_numbers_and_concurrent_acks_one_event(
    make_runtime: Callable[..., Runtime], db_url: str
) -> None:
    rt = make_runtime(db_url)
    numbers: list[int] = []
    errors: list[BaseException] = []

    def declare_many() -> None:
        try:
            for _ in range(8):
                numbers.append(_declare(rt, "P3"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=declare_many) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert sorted(numbers) == list(range(1, 25))

    barrier = threading.Barrier(4)
    results: list[bool] = []

    def ack(who: str) -> None:
        barrier.wait(timeout=10)
        with rt.db.transaction() as s:
            inc = service.get_or_raise(s, number=1, for_update=True)
            results.append(service.acknowledge(s, inc, actor=who, now=rt.now()))

    threads = [threading.Thread(target=ack, args=(f"p{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [False, False, False, True]
    assert _kinds(rt, 1).count(timeline.ACKNOWLEDGED) == 1
