"""Drills: a rehearsal of a runbook, run as an incident flagged `is_drill`, with measured RTO/RPO.

A drill opens its incident without paging anyone unless asked, and every
place that shows the incident labels it as a drill. `drill_every` in a
runbook's front matter makes a missing drill visible.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warroom.config.schema import Config
from warroom.core.clock import as_utc
from warroom.core.errors import Conflict, InvalidInput, NotFound
from warroom.core.redact import Redactor
from warroom.incidents import service as incidents
from warroom.incidents import timeline
from warroom.incidents.models import Incident
from warroom.postmortems.models import Drill
from warroom.postmortems.runbookrefs import RunbookInfo
from warroom.store import audit

DRILL_STARTED = "drill.started"
DRILL_FINISHED = "drill.finished"
MAX_FAILURES = 50
MAX_RECOVERY = timedelta(days=30)


class Outcome(StrEnum):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"


def start(
    session: Session,
    *,
    config: Config,
    runbook: RunbookInfo,
    actor: str,
    now: datetime,
    page: bool = False,
    severity: str | None = None,
    redactor: Redactor | None = None,
) -> tuple[Drill, Incident]:
    """Open the drill's incident (no pages unless `page`) and the drill record."""
    running = session.scalar(
        select(Drill.id).where(Drill.runbook_id == runbook.id, Drill.outcome == Outcome.RUNNING)
    )
    if running is not None:
        raise Conflict(
            f"drill {running} of runbook {runbook.id} is still running",
            hint=f"finish it first: `warroom drill finish {running}`",
        )
    incident = incidents.create(
        session,
        config=config,
        title=f"[DRILL] {runbook.title}",
        severity=severity or runbook.severity or "P2",
        actor=actor,
        now=now,
        runbooks=[runbook.id],
        summary=f"Drill of runbook {runbook.id}. Not a real incident.",
        source="drill",
        is_drill=True,
        redactor=redactor,
        page=page,
    )
    drill = Drill(
        runbook_id=runbook.id,
        incident_id=incident.id,
        started_by=actor,
        started_at=now,
        finished_at=None,
        rto_seconds=None,
        rpo_seconds=None,
        outcome=Outcome.RUNNING.value,
        failures=[],
        notes="",
    )
    session.add(drill)
    session.flush()
    timeline.add(
        session,
        incident,
        kind=DRILL_STARTED,
        actor=actor,
        at=now,
        text=f"Drill {drill.id} of runbook {runbook.id} started"
        + (" (paging on)" if page else " (no pages)"),
        data={"drill": drill.id, "runbook": runbook.id, "page": page},
    )
    audit.record(session, at=now, actor=actor, action="drill.start", target=f"drill:{drill.id}")
    return drill, incident


def get_or_raise(session: Session, drill_id: int) -> Drill:
    drill = session.get(Drill, drill_id)
    if drill is None:
        raise NotFound(f"drill {drill_id} does not exist", field="id")
    return drill


def _seconds(value: float | timedelta | None, *, field: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if math.isnan(seconds) or seconds < 0 or seconds > MAX_RECOVERY.total_seconds():
        raise InvalidInput(f"{field} must be between 0 and 30 days", field=field)
    return seconds


def finish(
    session: Session,
    drill: Drill,
    *,
    actor: str,
    now: datetime,
    rto: float | timedelta | None = None,
    rpo: float | timedelta | None = None,
    failures: Sequence[str] = (),
    notes: str = "",
    redactor: Redactor | None = None,
) -> Drill:
    """Record the result and resolve the drill's incident.

    RTO defaults to the time since the drill started; failures make the
    outcome `failed`. Raises Conflict when the drill is already finished.
    """
    if drill.outcome != Outcome.RUNNING:
        raise Conflict(f"drill {drill.id} is already finished ({drill.outcome})")
    clean = redactor.redact if redactor is not None else (lambda s: s)
    failed = [clean(" ".join(f.split())) for f in failures if f and f.strip()]
    if len(failed) > MAX_FAILURES:
        raise InvalidInput(f"more than {MAX_FAILURES} failures", field="failed")
    if len(notes) > 20_000:
        raise InvalidInput("notes longer than 20000 characters", field="notes")
    rto_s = _seconds(rto, field="rto")
    if rto_s is None:
        rto_s = (as_utc(now) - as_utc(drill.started_at)).total_seconds()
    drill.rto_seconds = rto_s
    drill.rpo_seconds = _seconds(rpo, field="rpo")
    drill.failures = failed
    drill.notes = clean(notes)
    drill.finished_at = now
    drill.outcome = (Outcome.FAILED if failed else Outcome.PASSED).value
    incident = session.get(Incident, drill.incident_id) if drill.incident_id else None
    if incident is not None:
        rpo_text = f", RPO {drill.rpo_seconds:.1f}s" if drill.rpo_seconds is not None else ""
        text = f"Drill {drill.id} {drill.outcome}: RTO {rto_s:.1f}s{rpo_text}"
        if failed:
            text += "; failed: " + "; ".join(failed)
        timeline.add(
            session,
            incident,
            kind=DRILL_FINISHED,
            actor=actor,
            at=now,
            text=text,
            data={"drill": drill.id, "rto_seconds": rto_s, "rpo_seconds": drill.rpo_seconds},
            redactor=redactor,
        )
        if incident.is_open:
            incidents.resolve(
                session, incident, actor=actor, now=now, text=f"Drill {drill.id} finished"
            )
    audit.record(
        session,
        at=now,
        actor=actor,
        action="drill.finish",
        target=f"drill:{drill.id}",
        detail={"outcome": drill.outcome, "rto_seconds": rto_s, "rpo_seconds": drill.rpo_seconds},
    )
    session.flush()
    return drill


def list_drills(
    session: Session, *, runbook_id: str | None = None, limit: int = 200
) -> Sequence[Drill]:
    stmt = select(Drill)
    if runbook_id:
        stmt = stmt.where(Drill.runbook_id == runbook_id)
    return session.scalars(stmt.order_by(Drill.id.desc()).limit(limit)).all()


@dataclass(frozen=True)
class DrillDue:
    runbook_id: str
    title: str
    owner: str
    drill_every: timedelta
    last_drill_at: datetime | None
    due_at: datetime | None  # None: never drilled, due now
    overdue: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "runbook": self.runbook_id,
            "title": self.title,
            "owner": self.owner,
            "drill_every_seconds": int(self.drill_every.total_seconds()),
            "last_drill_at": self.last_drill_at.isoformat() if self.last_drill_at else None,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "overdue": self.overdue,
        }


def last_drills(session: Session) -> dict[str, datetime]:
    """Runbook id -> when its last finished drill finished (a failed drill still counts as held)."""
    rows = session.execute(
        select(Drill.runbook_id, func.max(Drill.finished_at))
        .where(Drill.finished_at.is_not(None))
        .group_by(Drill.runbook_id)
    ).all()
    return {rid: as_utc(at) for rid, at in rows if at is not None}


def drills_due(catalog: Iterable[RunbookInfo], session: Session, now: datetime) -> list[DrillDue]:
    """Every runbook with `drill_every`, with its last drill and whether the next one is overdue."""
    last = last_drills(session)
    out: list[DrillDue] = []
    for ref in catalog:
        every = ref.drill_every
        if not every:
            continue
        held = last.get(ref.id)
        due_at = held + every if held else None
        out.append(
            DrillDue(
                runbook_id=ref.id,
                title=ref.title,
                owner=ref.owner,
                drill_every=every,
                last_drill_at=held,
                due_at=due_at,
                overdue=due_at is None or due_at <= now,
            )
        )
    return sorted(out, key=lambda d: (not d.overdue, d.runbook_id))


def as_dict(drill: Drill, *, incident_number: int | None = None) -> dict[str, Any]:
    return {
        "id": drill.id,
        "runbook": drill.runbook_id,
        "incident": incident_number,
        "is_drill": True,
        "started_by": drill.started_by,
        "started_at": as_utc(drill.started_at).isoformat(),
        "finished_at": as_utc(drill.finished_at).isoformat() if drill.finished_at else None,
        "outcome": drill.outcome,
        "rto_seconds": drill.rto_seconds,
        "rpo_seconds": drill.rpo_seconds,
        "failures": list(drill.failures or []),
        "notes": drill.notes,
    }
