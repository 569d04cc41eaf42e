"""Reports: MTTA and MTTR (median, p90) per severity, service and month; response-time
compliance; incidents per service; drills done vs due.

Definitions (the test computes the same figures independently from them):

- An incident counts when it was declared in [since, until) and is not a drill.
- MTTA sample: acknowledged_at - detected_at; MTTR sample: resolved_at - detected_at.
  Both clocks start at detection, because that is when customers start to hurt.
- Median is the usual median (mean of the two middle values for an even count);
  p90 is the nearest-rank percentile: the ceil(0.9 * n)-th smallest sample.
- Response-time compliance per severity: of the incidents whose response is
  decided (acknowledged, or unacknowledged past their respond-by time at `until`),
  the share acknowledged by their respond-by time. Respond-by comes from the
  incident (it follows severity changes), else declared_at + the policy's respond_within.
- Month is the calendar month of declared_at in the organisation's time zone.
- Drills: per runbook with `drill_every`, drills finished in the window ("done")
  against the number of drill periods the window spans, rounded up ("due").
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warroom.config.schema import Config
from warroom.core.clock import as_utc
from warroom.core.errors import InvalidInput
from warroom.incidents.models import Incident
from warroom.notify.models import Delivery
from warroom.postmortems.drills import drills_due
from warroom.postmortems.models import ActionItem, Drill
from warroom.postmortems.runbookrefs import RunbookInfo

NO_SERVICE = "(none)"
SEVERITY_LABELS = ("P0", "P1", "P2", "P3")
# notify.service.State, spelled out: reports must not depend on the sender's internals
DELIVERY_STATES = ("queued", "sending", "sent", "failed", "dead", "cancelled", "fallback")
MAX_WINDOW = timedelta(days=3660)


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def p90(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(0.9 * len(ordered))
    return float(ordered[max(rank, 1) - 1])


@dataclass
class Times:
    """Figures for one group (a severity, a service or a month). Seconds; None when no sample."""

    incidents: int = 0
    acknowledged: int = 0
    resolved: int = 0
    mtta_median: float | None = None
    mtta_p90: float | None = None
    mttr_median: float | None = None
    mttr_p90: float | None = None


@dataclass
class Compliance:
    decided: int = 0
    within: int = 0
    rate: float | None = None


@dataclass
class DrillFigures:
    runbook: str
    drill_every_seconds: int
    done: int
    due: int
    overdue: bool


@dataclass
class Report:
    since: datetime
    until: datetime
    timezone: str
    total: int
    overall: Times
    by_severity: dict[str, Times] = field(default_factory=dict)
    by_service: dict[str, Times] = field(default_factory=dict)
    by_month: dict[str, Times] = field(default_factory=dict)
    compliance: dict[str, Compliance] = field(default_factory=dict)
    incidents_per_service: dict[str, int] = field(default_factory=dict)
    drills: list[DrillFigures] = field(default_factory=list)
    drills_done: int = 0
    drills_due: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat()
        data["until"] = self.until.isoformat()
        return data


@dataclass
class _Acc:
    incidents: int = 0
    tta: list[float] = field(default_factory=list)
    ttr: list[float] = field(default_factory=list)

    def times(self) -> Times:
        return Times(
            incidents=self.incidents,
            acknowledged=len(self.tta),
            resolved=len(self.ttr),
            mtta_median=median(self.tta),
            mtta_p90=p90(self.tta),
            mttr_median=median(self.ttr),
            mttr_p90=p90(self.ttr),
        )


def compute(
    session: Session,
    since: datetime,
    until: datetime,
    *,
    config: Config | None = None,
    catalog: Iterable[RunbookInfo] = (),
) -> Report:
    """Compute the report for [since, until). Raises InvalidInput for an empty or huge window.

    `config` gives the time zone and the respond-within fallbacks (default: the
    built-in severity table, UTC); `catalog` the runbooks whose drills count.
    """
    config = config or Config()
    since, until = as_utc(since), as_utc(until)
    if until <= since:
        raise InvalidInput("until must be after since", field="until")
    if until - since > MAX_WINDOW:
        raise InvalidInput("report window longer than 10 years", field="since")
    tz = ZoneInfo(config.timezone)
    rows = session.execute(
        select(
            Incident.severity,
            Incident.services,
            Incident.detected_at,
            Incident.declared_at,
            Incident.acknowledged_at,
            Incident.resolved_at,
            Incident.respond_by,
        ).where(
            Incident.declared_at >= since,
            Incident.declared_at < until,
            Incident.is_drill.is_(False),
        )
    ).all()
    overall = _Acc()
    by_sev: dict[str, _Acc] = defaultdict(_Acc)
    by_service: dict[str, _Acc] = defaultdict(_Acc)
    by_month: dict[str, _Acc] = defaultdict(_Acc)
    compliance: dict[str, Compliance] = defaultdict(Compliance)
    for sev, services, detected_raw, declared, acked, resolved, respond_by in rows:
        detected = as_utc(detected_raw)
        tta = max((as_utc(acked) - detected).total_seconds(), 0.0) if acked else None
        ttr = max((as_utc(resolved) - detected).total_seconds(), 0.0) if resolved else None
        month = as_utc(declared).astimezone(tz).strftime("%Y-%m")
        groups = [overall, by_sev[sev], by_month[month]]
        groups += [by_service[s] for s in dict.fromkeys(services or [NO_SERVICE])]
        for acc in groups:
            acc.incidents += 1
            if tta is not None:
                acc.tta.append(tta)
            if ttr is not None:
                acc.ttr.append(ttr)
        deadline = as_utc(respond_by) if respond_by else _policy_deadline(config, sev, declared)
        comp = compliance[sev]
        if acked is not None:
            comp.decided += 1
            comp.within += int(as_utc(acked) <= deadline)
        elif deadline <= until:
            comp.decided += 1
    for comp in compliance.values():
        comp.rate = comp.within / comp.decided if comp.decided else None
    drill_rows = _drills(session, since, until, catalog)
    return Report(
        since=since,
        until=until,
        timezone=config.timezone,
        total=overall.incidents,
        overall=overall.times(),
        by_severity={k: by_sev[k].times() for k in sorted(by_sev)},
        by_service={k: by_service[k].times() for k in sorted(by_service)},
        by_month={k: by_month[k].times() for k in sorted(by_month)},
        compliance={k: compliance[k] for k in sorted(compliance)},
        incidents_per_service={k: by_service[k].incidents for k in sorted(by_service)},
        drills=drill_rows,
        drills_done=sum(d.done for d in drill_rows),
        drills_due=sum(d.due for d in drill_rows),
    )


def _policy_deadline(config: Config, severity: str, declared: datetime) -> datetime:
    sev = config.severities.get(severity)  # type: ignore[call-overload]
    within = sev.respond_within if sev is not None else timedelta(hours=24)
    return as_utc(declared) + within


def _drills(
    session: Session, since: datetime, until: datetime, catalog: Iterable[RunbookInfo]
) -> list[DrillFigures]:
    refs = [r for r in catalog if r.drill_every]
    if not refs:
        return []
    finished = session.scalars(
        select(Drill.runbook_id).where(
            Drill.finished_at.is_not(None), Drill.finished_at >= since, Drill.finished_at < until
        )
    ).all()
    done: dict[str, int] = defaultdict(int)
    for rid in finished:
        done[rid] += 1
    overdue = {d.runbook_id: d.overdue for d in drills_due(refs, session, until)}
    window = (until - since).total_seconds()
    out = []
    for ref in sorted(refs, key=lambda r: r.id):
        every = ref.drill_every or timedelta(days=90)
        out.append(
            DrillFigures(
                runbook=ref.id,
                drill_every_seconds=int(every.total_seconds()),
                done=done.get(ref.id, 0),
                due=max(1, math.ceil(window / every.total_seconds())),
                overdue=overdue.get(ref.id, True),
            )
        )
    return out


def metric_lines(session: Session, *, today: date) -> list[str]:
    """Prometheus text lines counted from the tables: incidents, acks, breaches, deliveries,
    overdue action items. Counts over all time, so they only grow (except the gauges)."""
    lines: list[str] = []
    real = Incident.is_drill.is_(False)
    rows = session.execute(
        select(
            Incident.severity,
            func.count(),
            func.count(Incident.acknowledged_at),
            func.count(Incident.breached_at),
        )
        .where(real)
        .group_by(Incident.severity)
    ).all()
    by_sev = {sev: (int(n), int(acked), int(breached)) for sev, n, acked, breached in rows}
    for name, index, help_text in (
        ("warroom_incidents_total", 0, "Incidents declared (drills excluded)."),
        ("warroom_incidents_acknowledged_total", 1, "Incidents acknowledged."),
        ("warroom_response_breaches_total", 2, "Incidents not acknowledged within respond-by."),
    ):
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} counter")
        for sev in SEVERITY_LABELS:
            lines.append(f'{name}{{severity="{sev}"}} {by_sev.get(sev, (0, 0, 0))[index]}')
    delivery_rows = session.execute(
        select(Delivery.state, func.count()).group_by(Delivery.state)
    ).all()
    states = {str(state): int(n) for state, n in delivery_rows}
    lines.append("# HELP warroom_deliveries Notification deliveries by outcome.")
    lines.append("# TYPE warroom_deliveries gauge")
    for state in DELIVERY_STATES:
        lines.append(f'warroom_deliveries{{state="{state}"}} {int(states.get(state, 0))}')
    overdue = session.scalar(
        select(func.count())
        .select_from(ActionItem)
        .where(
            ActionItem.state.in_(("open", "in_progress")),
            ActionItem.due_date.is_not(None),
            ActionItem.due_date < today,
        )
    )
    lines.append("# HELP warroom_action_items_overdue Open action items past their due date.")
    lines.append("# TYPE warroom_action_items_overdue gauge")
    lines.append(f"warroom_action_items_overdue {int(overdue or 0)}")
    return lines
