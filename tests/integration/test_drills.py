"""Drills: flagged incidents that page nobody unless asked, RTO/RPO recorded, overdue drills."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from warroom.core.clock import FrozenClock
from warroom.core.errors import Conflict, InvalidInput
from warroom.incidents.models import Incident, TimelineEvent
from warroom.incidents.service import JOB_OPENED
from warroom.jobs.models import Job
from warroom.jobs.runtime import Runtime
from warroom.postmortems import drills
from warroom.postmortems.runbookrefs import find, load_catalog

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
DR = """---
id: disaster-recovery
title: Disaster Recovery
owner: devops-team
severity: P0
drill_every: 90d
---

# Disaster Recovery
"""
CPU = DR.replace("disaster-recovery", "high-cpu").replace("drill_every: 90d\n", "")


def _catalog(tmp_path: Path) -> Path:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "disaster-recovery.md").write_text(DR)
    (folder / "high-cpu.md").write_text(CPU)
    return folder


def test_drill_opens_a_flagged_incident_without_pages_and_records_rto_rpo(
    db_url: str, make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    clock = FrozenClock(T0)
    rt = make_runtime(db_url, clock=clock)
    ref = find(load_catalog(_catalog(tmp_path)), "disaster-recovery")
    with rt.db.transaction() as s:
        drill, incident = drills.start(s, config=rt.config, runbook=ref, actor="alice", now=T0)
        with pytest.raises(Conflict, match="still running"):
            drills.start(s, config=rt.config, runbook=ref, actor="alice", now=T0)
    with rt.db.read() as s:
        inc = s.get(Incident, incident.id)
        assert inc is not None
        assert (inc.is_drill, inc.source, inc.severity) == (True, "drill", "P0")
        assert inc.title == "[DRILL] Disaster Recovery"
        assert inc.runbooks == ["disaster-recovery"]
        # no page: the escalation job is never written
        assert s.scalars(select(Job).where(Job.kind == JOB_OPENED)).all() == []

    clock.advance(timedelta(minutes=7, seconds=30))
    with rt.db.transaction() as s:
        d = drills.get_or_raise(s, drill.id)
        drills.finish(
            s, d, actor="alice", now=clock.now(), rpo=0.0, failures=["replica lag alert missing"]
        )
        with pytest.raises(Conflict, match="already finished"):
            drills.finish(s, d, actor="alice", now=clock.now())
    with rt.db.read() as s:
        d = drills.get_or_raise(s, drill.id)
        assert (d.rto_seconds, d.rpo_seconds, d.outcome) == (450.0, 0.0, "failed")
        assert d.failures == ["replica lag alert missing"]
        inc = s.get(Incident, incident.id)
        assert inc is not None and inc.status == "resolved"
        texts = [e.text for e in s.scalars(select(TimelineEvent).order_by(TimelineEvent.id))]
        assert texts[0] == "P0 declared: [DRILL] Disaster Recovery (drill)"
        assert "Drill 1 failed: RTO 450.0s, RPO 0.0s; failed: replica lag alert missing" in texts


def test_drill_pages_only_when_asked(
    sqlite_url: str, make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    rt = make_runtime(sqlite_url, clock=FrozenClock(T0))
    ref = find(load_catalog(_catalog(tmp_path)), "high-cpu")
    with rt.db.transaction() as s:
        _d, inc = drills.start(s, config=rt.config, runbook=ref, actor="a", now=T0, page=True)
        jobs = s.scalars(select(Job).where(Job.kind == JOB_OPENED)).all()
        assert [j.incident_id for j in jobs] == [inc.id]


def test_bad_rto_is_refused(
    sqlite_url: str, make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    rt = make_runtime(sqlite_url, clock=FrozenClock(T0))
    ref = find(load_catalog(_catalog(tmp_path)), "high-cpu")
    with rt.db.transaction() as s:
        d, _inc = drills.start(s, config=rt.config, runbook=ref, actor="a", now=T0)
        with pytest.raises(InvalidInput) as err:
            drills.finish(s, d, actor="a", now=T0, rto=-5)
        assert err.value.field == "rto"


def test_drill_every_makes_a_missing_drill_overdue(
    db_url: str, make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    clock = FrozenClock(T0)
    rt = make_runtime(db_url, clock=clock)
    catalog = load_catalog(_catalog(tmp_path))
    with rt.db.read() as s:
        due = drills.drills_due(catalog, s, clock.now())
    assert [(d.runbook_id, d.last_drill_at, d.overdue) for d in due] == [
        ("disaster-recovery", None, True)  # never drilled; high-cpu has no drill_every
    ]
    with rt.db.transaction() as s:
        d, _ = drills.start(
            s, config=rt.config, runbook=find(catalog, "disaster-recovery"), actor="a", now=T0
        )
        drills.finish(s, d, actor="a", now=T0 + timedelta(minutes=5))
    with rt.db.read() as s:
        (due_dr,) = drills.drills_due(catalog, s, T0 + timedelta(days=30))
        assert (due_dr.overdue, due_dr.due_at) == (False, T0 + timedelta(days=90, minutes=5))
        (late,) = drills.drills_due(catalog, s, T0 + timedelta(days=91))
        assert late.overdue is True
