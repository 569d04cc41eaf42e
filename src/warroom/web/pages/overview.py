"""Dashboard, on-call and alerts pages (read-only views)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from warroom.alerts.models import Alert
from warroom.config.schema import Config
from warroom.core.errors import InvalidInput, WarroomError
from warroom.incidents import service as incidents
from warroom.incidents.models import Incident
from warroom.jobs.runtime import Runtime
from warroom.oncall import service as oncall
from warroom.web.deps import RuntimeDep, Viewer
from warroom.web.pages import common, runbooks

router = APIRouter()
SEVERITIES = ("P0", "P1", "P2", "P3")
ALERT_STATUSES = ("firing", "acknowledged", "resolved")


@dataclass(frozen=True)
class OnCallNow:
    schedule_id: str
    schedule_name: str
    person: str | None
    person_name: str
    source: str


def person_name(config: Config, person_id: str | None) -> str:
    if not person_id:
        return "nobody"
    person = config.person(person_id)
    return person.name if person is not None else person_id


def oncall_now(s: Session, rt: Runtime, now: datetime) -> list[OnCallNow]:
    out: list[OnCallNow] = []
    for schedule in rt.config.schedules:
        try:
            who = oncall.who(s, config=rt.config, schedule_id=schedule.id, at=now)
        except WarroomError:
            continue
        out.append(
            OnCallNow(
                schedule_id=schedule.id,
                schedule_name=schedule.name or schedule.id,
                person=who.person,
                person_name=person_name(rt.config, who.person),
                source=str(who.source),
            )
        )
    return out


@router.get("/")
def dashboard(request: Request, rt: RuntimeDep, _viewer: Viewer) -> Response:
    now = rt.now()
    with rt.db.read() as s:
        open_rows, _total = incidents.list_incidents(s, open_only=True, limit=200)
        by_severity: dict[str, list[Any]] = {sev: [] for sev in SEVERITIES}
        for row in open_rows:
            by_severity.setdefault(row.severity, []).append(row)
        alerts = list(s.scalars(select(Alert).order_by(Alert.last_seen.desc()).limit(10)))
        who = oncall_now(s, rt, now)
    return common.render(
        request,
        "dashboard.html",
        {
            "by_severity": by_severity,
            "open_count": len(open_rows),
            "alerts": alerts,
            "oncall": who,
            "overdue": runbooks.overdue_reviews(rt, now),
            "severities": rt.config.severities,
        },
    )


@router.get("/oncall")
def oncall_page(request: Request, rt: RuntimeDep, _viewer: Viewer) -> Response:
    now = rt.now()
    schedules: list[dict[str, Any]] = []
    with rt.db.read() as s:
        current = {o.schedule_id: o for o in oncall_now(s, rt, now)}
        for schedule in rt.config.schedules:
            shifts = oncall.upcoming(
                s, config=rt.config, schedule_id=schedule.id, start=now, days=14
            )
            overrides = oncall.list_overrides(s, schedule_id=schedule.id, now=now)
            config_overrides = [o for o in schedule.overrides if o.to > now]
            schedules.append(
                {
                    "schedule": schedule,
                    "now": current.get(schedule.id),
                    "shifts": shifts[:60],
                    "overrides": overrides,
                    "config_overrides": config_overrides,
                }
            )
    return common.render(
        request,
        "oncall.html",
        {"schedules": schedules, "name": lambda pid: person_name(rt.config, pid)},
    )


@router.get("/alerts")
def alerts_page(
    request: Request, rt: RuntimeDep, _viewer: Viewer, status: str = "", q: str = ""
) -> Response:
    if status and status not in ALERT_STATUSES:
        raise InvalidInput(
            f"unknown alert status {status!r}",
            field="status",
            hint="use " + ", ".join(ALERT_STATUSES),
        )
    if len(q) > 200:
        raise InvalidInput("search text longer than 200 characters", field="q")
    stmt = select(Alert)
    if status:
        stmt = stmt.where(Alert.status == status)
    if q:
        stmt = stmt.where(Alert.name.ilike(f"%{q}%"))
    with rt.db.read() as s:
        rows = list(s.scalars(stmt.order_by(Alert.last_seen.desc()).limit(200)))
        numbers = _incident_numbers(s, {r.incident_id for r in rows if r.incident_id})
    return common.render(
        request,
        "alerts.html",
        {
            "alerts": rows,
            "status": status,
            "q": q,
            "statuses": ALERT_STATUSES,
            "numbers": numbers,
            "day": timedelta(days=1),
        },
    )


def _incident_numbers(s: Session, ids: set[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = s.execute(select(Incident.id, Incident.number).where(Incident.id.in_(ids))).all()
    return {int(i): int(n) for i, n in rows}
