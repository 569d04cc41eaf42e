"""On-call lookups against config plus run-time overrides (recorded in the DB and the audit log)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from warroom.config.schema import Config, Schedule
from warroom.core.clock import as_utc
from warroom.core.errors import InvalidInput, NotFound
from warroom.oncall import schedule as sched
from warroom.oncall.models import OverrideRow
from warroom.store import audit

MAX_OVERRIDE = timedelta(days=90)


def get_schedule(config: Config, schedule_id: str) -> Schedule:
    """Raises NotFound naming the known schedules."""
    found = config.schedule(schedule_id)
    if found is None:
        known = ", ".join(s.id for s in config.schedules) or "none configured"
        raise NotFound(f"unknown schedule {schedule_id[:100]!r} (known: {known})", field="schedule")
    return found


def runtime_overrides(
    session: Session,
    *,
    schedule_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[sched.OverrideSpan]:
    """Active run-time overrides, newest first (the newest wins where they overlap)."""
    stmt = select(OverrideRow).where(
        OverrideRow.schedule_id == schedule_id, OverrideRow.cancelled_at.is_(None)
    )
    if end is not None:
        stmt = stmt.where(OverrideRow.starts_at < end)
    if start is not None:
        stmt = stmt.where(OverrideRow.ends_at > start)
    rows = session.scalars(stmt.order_by(OverrideRow.id.desc())).all()
    return [
        sched.OverrideSpan(r.person, as_utc(r.starts_at), as_utc(r.ends_at), "runtime", r.id)
        for r in rows
    ]


def who(session: Session, *, config: Config, schedule_id: str, at: datetime) -> sched.OnCall:
    schedule = get_schedule(config, schedule_id)
    return sched.oncall_at(schedule, at, runtime_overrides(session, schedule_id=schedule_id))


def upcoming(
    session: Session, *, config: Config, schedule_id: str, start: datetime, days: float
) -> list[sched.Shift]:
    schedule = get_schedule(config, schedule_id)
    end = start + timedelta(days=days)
    spans = runtime_overrides(session, schedule_id=schedule_id, start=start, end=end)
    return sched.shifts(schedule, start, end, spans)


def add_override(
    session: Session,
    *,
    config: Config,
    schedule_id: str,
    person: str,
    starts_at: datetime,
    ends_at: datetime,
    actor: str,
    now: datetime,
    reason: str = "",
) -> OverrideRow:
    """Put `person` on call for a window. Raises NotFound / InvalidInput."""
    get_schedule(config, schedule_id)
    if config.person(person) is None:
        raise NotFound(f"unknown person {person!r}", field="person")
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise InvalidInput("override times need a UTC offset", field="from")
    if ends_at <= starts_at:
        raise InvalidInput("override 'to' must be after 'from'", field="to")
    if ends_at - starts_at > MAX_OVERRIDE:
        raise InvalidInput("an override may last at most 90 days", field="to")
    if ends_at <= now:
        raise InvalidInput("the override window is already over", field="to")
    if len(reason) > 2000:
        raise InvalidInput("reason longer than 2000 characters", field="reason")
    row = OverrideRow(
        schedule_id=schedule_id,
        person=person,
        starts_at=starts_at.astimezone(UTC),
        ends_at=ends_at.astimezone(UTC),
        reason=reason,
        created_by=actor,
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="oncall.override.add",
        target=f"schedule:{schedule_id}",
        detail=override_dict(row),
    )
    return row


def cancel_override(
    session: Session, *, schedule_id: str, override_id: int, actor: str, now: datetime
) -> OverrideRow:
    row = session.get(OverrideRow, override_id)
    if row is None or row.schedule_id != schedule_id or row.cancelled_at is not None:
        raise NotFound(f"no active override {override_id} on schedule {schedule_id!r}", field="id")
    row.cancelled_at = now
    audit.record(
        session,
        at=now,
        actor=actor,
        action="oncall.override.cancel",
        target=f"schedule:{schedule_id}",
        detail={"id": override_id},
    )
    return row


def list_overrides(session: Session, *, schedule_id: str, now: datetime) -> list[OverrideRow]:
    return list(
        session.scalars(
            select(OverrideRow)
            .where(
                OverrideRow.schedule_id == schedule_id,
                OverrideRow.cancelled_at.is_(None),
                OverrideRow.ends_at > now,
            )
            .order_by(OverrideRow.starts_at)
        )
    )


def override_dict(row: OverrideRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "schedule": row.schedule_id,
        "person": row.person,
        "from": as_utc(row.starts_at).isoformat(),
        "to": as_utc(row.ends_at).isoformat(),
        "reason": row.reason,
        "created_by": row.created_by,
    }
