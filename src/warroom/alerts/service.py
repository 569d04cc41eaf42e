"""Ingest: upsert a batch of alerts, join or open group incidents, apply resolve policy, enqueue diagnostics.

One call is one request's work inside the caller's transaction: alerts,
incidents, timeline events and jobs land together or not at all.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from warroom.alerts.models import Alert
from warroom.alerts.routing import Decision, decide
from warroom.alerts.sources import AlertStatus, Normalized
from warroom.config.schema import Config, Integration
from warroom.core.errors import InvalidInput
from warroom.core.redact import Redactor
from warroom.incidents import service as incidents
from warroom.incidents import timeline
from warroom.incidents.models import Incident, Status, TimelineEvent
from warroom.jobs.models import Job, JobState
from warroom.runbooks.model import Catalog

JOB_DIAGNOSTICS = "alerts.diagnostics"
EV_FIRING = "alert.firing"
EV_RESOLVED = "alert.resolved"
EV_ACKED = "alert.acknowledged"
CHUNK = 500
LIST_IN_EVENT = 20
# throttled diagnostics wait (RetryLater) without becoming dead letters during a storm
DIAG_MAX_ATTEMPTS = 500


@dataclass
class IngestResult:
    received: int = 0
    created: int = 0
    updated: int = 0
    resolved: int = 0
    stale: int = 0
    opened: list[int] = field(default_factory=list)  # incident numbers opened
    joined: list[int] = field(default_factory=list)  # incident numbers that got new alerts
    closed: list[int] = field(default_factory=list)  # incidents resolved / moved to monitoring
    fingerprints: dict[str, int | None] = field(default_factory=dict)  # -> incident id

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "created": self.created,
            "updated": self.updated,
            "resolved": self.resolved,
            "stale": self.stale,
            "incidents_opened": self.opened,
            "incidents_joined": self.joined,
            "incidents_settled": self.closed,
        }


def lock_key(text_: str) -> int:
    """A signed 64-bit advisory-lock key for a string."""
    return int.from_bytes(hashlib.sha256(text_.encode()).digest()[:8], "big", signed=True)


def _lock(session: Session, keys: Iterable[str]) -> None:
    # PostgreSQL: serialise writers of the same group / fingerprint until commit, in a
    # fixed order so two batches never deadlock. SQLite's BEGIN IMMEDIATE already does it.
    if session.get_bind().dialect.name != "postgresql":
        return
    ordered = sorted({lock_key(k) for k in keys})
    if ordered:
        session.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS bigint[])) AS k"
            ),
            {"keys": ordered},
        )


# The hot path uses Core statements on the tables (built once, with expanding bind
# parameters) wherever it does not need ORM objects: an ORM SELECT or INSERT ..
# RETURNING costs ~1 ms of CPU per statement, most of a 1-alert request. Core
# statements given to Session.execute do not autoflush; the ORM statements that
# remain (and the final flush in ingest()) write pending changes before they matter.
_ALERTS = cast(Table, Alert.__table__)
_INCIDENTS = cast(Table, Incident.__table__)
_EVENTS = cast(Table, TimelineEvent.__table__)
_JOBS = cast(Table, Job.__table__)
_EXISTING_IDS = select(_ALERTS.c.id).where(
    _ALERTS.c.integration_id == bindparam("integration_id"),
    _ALERTS.c.fingerprint.in_(bindparam("fps", expanding=True)),
)
# Joining a group's incident always sets its updated_at, so finding the incidents and
# touching them is one statement (one round trip fewer on PostgreSQL). The incident
# of a group is its oldest open one.
_JOIN_OPEN_INCIDENTS = (
    update(_INCIDENTS)
    .where(
        _INCIDENTS.c.id.in_(
            select(func.min(_INCIDENTS.c.id))
            .where(
                _INCIDENTS.c.group_key.in_(bindparam("keys", expanding=True)),
                _INCIDENTS.c.status != Status.RESOLVED.value,
            )
            .group_by(_INCIDENTS.c.group_key)
        )
    )
    .values(updated_at=bindparam("now", type_=_INCIDENTS.c.updated_at.type))
    .returning(
        _INCIDENTS.c.id,
        _INCIDENTS.c.number,
        _INCIDENTS.c.status,
        _INCIDENTS.c.runbooks,
        _INCIDENTS.c.group_key,
    )
)
_INSERT_EVENTS = insert(_EVENTS)
_INSERT_JOBS = insert(_JOBS)
_INSERT_ALERTS = insert(_ALERTS).returning(_ALERTS.c.id, sort_by_parameter_order=True)
_TAKEN_KEYS = select(_JOBS.c.dedup_key).where(
    _JOBS.c.dedup_key.in_(bindparam("keys", expanding=True))
)


@dataclass
class _Inserted:
    """A new alert row as inserted by _insert_alerts (its id from RETURNING)."""

    id: int
    fingerprint: str
    starts_at: datetime
    incident_id: int | None
    runbook_id: str | None


@dataclass
class _OpenIncident:
    """The columns of an open incident that joining it needs."""

    id: int
    number: int
    status: str
    runbooks: list[str]


def _existing(session: Session, integration_id: str, fps: Sequence[str]) -> dict[str, Alert]:
    # Most notifications are of new alerts: ask for ids first (cheap, Core) and load
    # ORM objects (which _apply updates) only for the rows that exist.
    ids: list[int] = []
    for i in range(0, len(fps), CHUNK):
        ids += session.scalars(
            _EXISTING_IDS, {"integration_id": integration_id, "fps": list(fps[i : i + CHUNK])}
        ).all()
    out: dict[str, Alert] = {}
    for i in range(0, len(ids), CHUNK):
        rows = session.scalars(select(Alert).where(Alert.id.in_(ids[i : i + CHUNK]))).all()
        out.update({r.fingerprint: r for r in rows})
    return out


def _join_open_incidents(
    session: Session, keys: Sequence[str], *, now: datetime
) -> dict[str, _OpenIncident]:
    """The open incident of each group that has one, its updated_at set to now."""
    out: dict[str, _OpenIncident] = {}
    for i in range(0, len(keys), CHUNK):
        rows = session.execute(
            _JOIN_OPEN_INCIDENTS, {"keys": list(keys[i : i + CHUNK]), "now": now}
        ).all()
        for r in rows:
            out[r.group_key or ""] = _OpenIncident(r.id, r.number, r.status, list(r.runbooks or []))
    return out


def _title(alert: Normalized, d: Decision) -> str:
    name = alert.name or alert.labels.get("alertname", "") or "Alert"
    summary = alert.summary or alert.annotations.get("description", "")
    text_ = f"{name}: {summary}" if summary and summary != name else name
    extra = ", ".join(f"{k}={v}" for k, v in d.group_labels.items() if k != "alertname" and v)
    if extra and not summary:
        text_ += f" ({extra})"
    return " ".join(text_.split())[: incidents.MAX_TITLE]


def _apply(row: Alert, a: Normalized, *, now: datetime, result: IngestResult) -> str:
    """Update an existing row from one notification. Returns new|refired|repeat|resolved|stale|acked."""
    row.last_seen = now
    if a.status == AlertStatus.FIRING:
        start = a.starts_at or now
        if row.status == AlertStatus.RESOLVED:
            if row.ends_at is not None and start < row.ends_at:
                result.stale += 1  # a late copy of an episode that already ended
                return "stale"
            row.status = AlertStatus.FIRING
            row.starts_at = start
            row.ends_at = None
            row.count += 1
            _refresh(row, a)
            return "refired"
        row.count += 1
        if row.starts_at is None or start > row.starts_at:
            row.starts_at = start
        _refresh(row, a)
        return "repeat"
    if a.status == AlertStatus.RESOLVED:
        end = a.ends_at or now
        if row.status == AlertStatus.RESOLVED:
            if row.ends_at is None or end > row.ends_at:
                row.ends_at = end
            return "repeat"
        if row.starts_at is not None and end < row.starts_at:
            result.stale += 1  # a resolve older than the current firing must not close it
            return "stale"
        row.status = AlertStatus.RESOLVED
        row.ends_at = end
        result.resolved += 1
        return "resolved"
    # acknowledged (PagerDuty): only a firing alert can be acknowledged
    if row.status == AlertStatus.FIRING:
        row.status = AlertStatus.ACKNOWLEDGED
        return "acked"
    return "repeat"


def _refresh(row: Alert, a: Normalized) -> None:
    if a.labels:
        row.labels = a.labels
    if a.annotations:
        row.annotations = a.annotations
    if a.summary:
        row.summary = a.summary
    if a.generator_url:
        row.generator_url = a.generator_url


def ingest(
    session: Session,
    *,
    config: Config,
    integration: Integration,
    alerts: Sequence[Normalized],
    now: datetime,
    catalog: Catalog | None,
    redactor: Redactor | None = None,
) -> IngestResult:
    """Store a batch and act on it, in the caller's transaction.

    New alerts, timeline events and jobs are inserted as batches (one
    statement each); only incidents that open go through incidents.create.
    """
    result = IngestResult(received=len(alerts))
    if not alerts:
        return result
    decisions = [decide(config, a, integration=integration.id, catalog=catalog) for a in alerts]
    _lock(
        session,
        [f"g:{d.group_key}" for d in decisions]
        + [f"f:{integration.id}:{a.fingerprint}" for a in alerts],
    )
    actor = f"integration:{integration.id}"
    existing = _existing(session, integration.id, [a.fingerprint for a in alerts])

    firing: list[tuple[Alert | None, Normalized, Decision]] = []  # new (None) or re-fired
    new_quiet: list[tuple[Normalized, Decision]] = []  # first seen already resolved
    resolved_rows: list[Alert] = []
    acked_rows: list[Alert] = []
    for a, d in zip(alerts, decisions, strict=True):
        row = existing.get(a.fingerprint)
        if row is None:
            if a.status == AlertStatus.FIRING:
                firing.append((None, a, d))
            elif a.status == AlertStatus.RESOLVED:
                new_quiet.append((a, d))
            # acknowledging an alert never seen: nothing to do (PagerDuty answers 202 too)
            continue
        result.updated += 1
        outcome = _apply(row, a, now=now, result=result)
        if outcome == "refired":
            row.group_key, row.runbook_id, row.route_index = d.group_key, d.runbook, d.route_index
            firing.append((row, a, d))
        elif outcome == "resolved":
            resolved_rows.append(row)
        elif outcome == "acked":
            acked_rows.append(row)

    incident_of = _join_or_open(
        session,
        config=config,
        firing=firing,
        now=now,
        actor=actor,
        result=result,
        redactor=redactor,
    )
    specs: list[tuple[Normalized, Decision, int | None]] = [
        (a, d, incident_of[d.group_key]) for row, a, d in firing if row is None
    ]
    specs += [(a, d, None) for a, d in new_quiet]
    inserted = _insert_alerts(session, integration.id, specs, now=now)
    result.created = len(inserted)
    diag: list[tuple[int, datetime | None, int, str]] = []  # alert id, starts_at, incident, rb
    for row, _a, d in firing:
        if row is not None:
            row.incident_id = incident_of[d.group_key]
            if d.runbook:
                diag.append((row.id, row.starts_at, incident_of[d.group_key], d.runbook))
    for new in inserted:
        if new.incident_id is not None and new.runbook_id:
            diag.append((new.id, new.starts_at, new.incident_id, new.runbook_id))
    _enqueue_diagnostics(session, diag, now=now)
    session.flush()
    _acknowledge(session, acked_rows, now=now, actor=actor, integration=integration)
    _settle(session, config=config, rows=resolved_rows, now=now, actor=actor, result=result)
    for row in existing.values():
        result.fingerprints[row.fingerprint] = row.incident_id
    for new in inserted:
        result.fingerprints[new.fingerprint] = new.incident_id
    return result


def _insert_alerts(
    session: Session,
    integration_id: str,
    specs: list[tuple[Normalized, Decision, int | None]],
    *,
    now: datetime,
) -> list[_Inserted]:
    """One multi-row INSERT .. RETURNING id for the batch's new alerts (Core: no ORM objects)."""
    if not specs:
        return []
    rows = [
        {
            "integration_id": integration_id,
            "fingerprint": a.fingerprint,
            "status": a.status.value,
            "name": a.name[:300],
            "summary": a.summary,
            "labels": a.labels,
            "annotations": a.annotations,
            "source_severity": a.source_severity[:50],
            "generator_url": a.generator_url,
            "starts_at": a.starts_at or now,
            "ends_at": (a.ends_at or now) if a.status == AlertStatus.RESOLVED else None,
            "first_seen": now,
            "last_seen": now,
            "count": 1,
            "group_key": d.group_key,
            "incident_id": incident_id,
            "runbook_id": d.runbook,
            "route_index": d.route_index,
        }
        for a, d, incident_id in specs
    ]
    ids = session.scalars(_INSERT_ALERTS, rows).all()
    return [
        # starts_at as the column type reads it back (aware UTC), as the ORM row had it
        _Inserted(id_, a.fingerprint, (a.starts_at or now).astimezone(UTC), incident_id, d.runbook)
        for id_, (a, d, incident_id) in zip(ids, specs, strict=True)
    ]


def _join_or_open(
    session: Session,
    *,
    config: Config,
    firing: list[tuple[Alert | None, Normalized, Decision]],
    now: datetime,
    actor: str,
    result: IngestResult,
    redactor: Redactor | None,
) -> dict[str, int]:
    """The incident id of every group with firing alerts (joined or opened); timeline events."""
    if not firing:
        return {}
    by_group: dict[str, list[tuple[Alert | None, Normalized, Decision]]] = defaultdict(list)
    for item in firing:
        by_group[item[2].group_key].append(item)
    open_by_key = _join_open_incidents(session, list(by_group), now=now)
    events: list[dict[str, Any]] = []
    out: dict[str, int] = {}
    for key, items in by_group.items():
        _row, first, d = items[0]
        found = open_by_key.get(key)
        runbooks = list(dict.fromkeys(i[2].runbook for i in items if i[2].runbook))
        if found is None:
            services = [d.service] if d.service else []
            title = _title(first, d)
            summary = first.annotations.get("description", "")
            if redactor is not None:
                title, summary = redactor.redact(title), redactor.redact(summary)
            incident = incidents.create(
                session,
                config=config,
                title=title,
                severity=d.severity,
                actor=actor,
                now=now,
                services=services,
                runbooks=runbooks,
                summary=summary[: incidents.MAX_TEXT],
                source="alert",
                detected_at=min((i[1].starts_at or now) for i in items),
                group_key=key,
                escalation_policy=d.route.escalation,
                redactor=redactor,
            )
            result.opened.append(incident.number)
            incident.updated_at = now
            incident_id = incident.id
        else:
            missing = [r for r in runbooks if r not in found.runbooks]
            if found.status == Status.MONITORING or missing:
                # rare: load the ORM object for the changes beyond updated_at
                joined = session.get(Incident, found.id)
                assert joined is not None  # selected in this transaction
                if joined.status == Status.MONITORING:
                    incidents.set_status(
                        session,
                        joined,
                        status=Status.INVESTIGATING,
                        actor=actor,
                        now=now,
                        text="An alert fired again: back to investigating",
                    )
                if missing:
                    joined.runbooks = [*(joined.runbooks or []), *missing]
            result.joined.append(found.number)
            incident_id = found.id
        out[key] = incident_id
        names = [a.name or a.fingerprint for _r, a, _d in items]
        text_ = f"{len(items)} alert(s) firing: " + ", ".join(names[:LIST_IN_EVENT])
        if len(names) > LIST_IN_EVENT:
            text_ += f" and {len(names) - LIST_IN_EVENT} more"
        data: dict[str, Any] = {
            "group_key": key,
            "fingerprints": [a.fingerprint for _r, a, _d in items][:LIST_IN_EVENT],
            "count": len(items),
            "severity": d.severity,
            "route": d.route_index,
            "runbook": d.runbook,
            "runbook_source": d.runbook_source,
        }
        if redactor is not None:
            text_ = redactor.redact(text_)
            data = cast(dict[str, Any], redactor.redact_obj(data))
        events.append(
            {
                "incident_id": incident_id,
                "at": now,
                "kind": EV_FIRING,
                "actor": actor,
                "text": text_,
                "data": data,
                "public": False,
            }
        )
    # one INSERT for the batch's events (timeline.add flushes per event)
    session.execute(_INSERT_EVENTS, events)
    return out


def _enqueue_diagnostics(
    session: Session, wanted: list[tuple[int, datetime | None, int, str]], *, now: datetime
) -> None:
    """One diagnostics job per new firing episode of an alert, inserted as a batch.

    The dedup keys are checked in one query; the advisory locks taken in
    ingest() (or SQLite's single writer) keep two requests from racing on one key.
    """
    if not wanted:
        return
    keyed = {
        f"diag:{alert_id}:{(starts_at or now).isoformat()}": (alert_id, inc, rb)
        for alert_id, starts_at, inc, rb in wanted
    }
    keys = list(keyed)
    taken: set[str] = set()
    for i in range(0, len(keys), CHUNK):
        taken.update(
            k for k in session.scalars(_TAKEN_KEYS, {"keys": keys[i : i + CHUNK]}) if k is not None
        )
    jobs = [
        {
            "kind": JOB_DIAGNOSTICS,
            "version": 1,
            "payload": {"alert_id": alert_id, "incident_id": inc, "runbook": rb},
            "state": JobState.PENDING,
            "run_at": now,
            "dedup_key": key,
            "incident_id": inc,
            "max_attempts": DIAG_MAX_ATTEMPTS,
            "priority": 200,
            "created_at": now,
            "updated_at": now,
            "attempts": 0,
        }
        for key, (alert_id, inc, rb) in keyed.items()
        if key not in taken
    ]
    if jobs:
        session.execute(_INSERT_JOBS, jobs)


def _acknowledge(
    session: Session, rows: list[Alert], *, now: datetime, actor: str, integration: Integration
) -> None:
    ids = {r.incident_id for r in rows if r.incident_id is not None}
    for incident_id in sorted(ids):
        incident = incidents.lock(session, incident_id=incident_id)
        if incident is None or incident.status == Status.RESOLVED:
            continue
        incidents.acknowledge(session, incident, actor=actor, now=now, via=integration.type)


def _settle(
    session: Session,
    *,
    config: Config,
    rows: list[Alert],
    now: datetime,
    actor: str,
    result: IngestResult,
) -> None:
    """Every alert of an incident resolved → policy: resolve, move to monitoring, or nothing."""
    by_incident: dict[int, list[Alert]] = defaultdict(list)
    for r in rows:
        if r.incident_id is not None:
            by_incident[r.incident_id].append(r)
    if not by_incident:
        return
    ids = sorted(by_incident)
    active = set(
        session.scalars(
            select(Alert.incident_id)
            .where(Alert.incident_id.in_(ids), Alert.status != AlertStatus.RESOLVED)
            .group_by(Alert.incident_id)
        ).all()
    )
    policy = config.policies.when_alerts_resolve
    for incident_id in ids:
        incident = session.get(Incident, incident_id)
        if incident is None:
            continue
        names = [r.name or r.fingerprint for r in by_incident[incident_id]]
        timeline.add(
            session,
            incident,
            kind=EV_RESOLVED,
            actor=actor,
            at=now,
            text=f"{len(names)} alert(s) resolved: " + ", ".join(names[:LIST_IN_EVENT]),
            data={
                "fingerprints": [r.fingerprint for r in by_incident[incident_id]][:LIST_IN_EVENT],
                "all_resolved": incident_id not in active,
            },
        )
        if incident_id in active or incident.status == Status.RESOLVED:
            continue
        settle_incident(
            session, incident, policy=policy, actor=actor, now=now, reason="All alerts resolved"
        )
        result.closed.append(incident.number)


def settle_incident(
    session: Session, incident: Incident, *, policy: str, actor: str, now: datetime, reason: str
) -> None:
    """Apply `policies.when_alerts_resolve` to an incident whose signal has cleared."""
    if policy == "resolve":
        incidents.set_status(
            session,
            incident,
            status=Status.RESOLVED,
            actor=actor,
            now=now,
            text=f"{reason}: incident resolved (policy when_alerts_resolve=resolve)",
        )
    elif policy == "monitoring" and incident.status != Status.MONITORING:
        incidents.set_status(
            session,
            incident,
            status=Status.MONITORING,
            actor=actor,
            now=now,
            text=f"{reason}: monitoring (policy when_alerts_resolve=monitoring)",
        )


def alert_dict(a: Alert, *, number: int | None = None) -> dict[str, Any]:
    return {
        "id": a.id,
        "integration": a.integration_id,
        "fingerprint": a.fingerprint,
        "status": a.status,
        "name": a.name,
        "summary": a.summary,
        "labels": a.labels,
        "annotations": a.annotations,
        "severity": a.source_severity,
        "generator_url": a.generator_url,
        "starts_at": a.starts_at.isoformat() if a.starts_at else None,
        "ends_at": a.ends_at.isoformat() if a.ends_at else None,
        "first_seen": a.first_seen.isoformat(),
        "last_seen": a.last_seen.isoformat(),
        "count": a.count,
        "group_key": a.group_key,
        "incident": number,
        "runbook": a.runbook_id,
        "route": a.route_index,
    }


def list_alerts(
    session: Session,
    *,
    status: str | None = None,
    integration: str | None = None,
    incident_id: int | None = None,
    limit: int = 100,
) -> list[tuple[Alert, int | None]]:
    """Newest first, with the incident number. Raises InvalidInput for an unknown status."""
    if status is not None and status not in {s.value for s in AlertStatus} | {"active"}:
        raise InvalidInput(
            f"unknown alert status {status!r}",
            field="status",
            hint="use firing, acknowledged, resolved or active",
        )
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000", field="limit")
    stmt = select(Alert, Incident.number).outerjoin(Incident, Incident.id == Alert.incident_id)
    if status == "active":
        stmt = stmt.where(Alert.status != AlertStatus.RESOLVED)
    elif status is not None:
        stmt = stmt.where(Alert.status == status)
    if integration is not None:
        stmt = stmt.where(Alert.integration_id == integration)
    if incident_id is not None:
        stmt = stmt.where(Alert.incident_id == incident_id)
    rows = session.execute(
        stmt.order_by(Alert.last_seen.desc(), Alert.id.desc()).limit(limit)
    ).all()
    return [(r[0], r[1]) for r in rows]


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Alert.status, func.count()).group_by(Alert.status)).all()
    return {str(s): int(n) for s, n in rows}
