"""Postmortem drafts: generated from the incident's record, edited while draft, then published.

Services add and flush, never commit: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warroom.config.schema import Config
from warroom.core import templating
from warroom.core.clock import as_utc
from warroom.core.durations import format_duration
from warroom.core.errors import Conflict, InvalidInput, NotFound
from warroom.core.redact import Redactor
from warroom.incidents import service as incidents
from warroom.incidents import timeline
from warroom.incidents.models import Incident, TimelineEvent
from warroom.postmortems import markdown
from warroom.postmortems.models import ActionItem, Postmortem
from warroom.store import audit

MAX_FIELD = 50_000
MAX_TIMELINE = 2_000
EDITABLE = ("title", "summary", "impact", "root_cause", "resolution", "lessons")
DONE_STATES = ("done", "wontfix")

# Timeline kinds that are bookkeeping about the postmortem itself, not the incident.
_SKIP_KINDS = {"postmortem.reminder", "postmortem.created", "postmortem.published"}
POSTMORTEM_CREATED = "postmortem.created"
POSTMORTEM_PUBLISHED = "postmortem.published"


class State(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


def _label(event: TimelineEvent) -> str:
    """Say who did what; the event's own text already says the rest."""
    text = " ".join((event.text or event.kind).split())
    if event.kind == timeline.NOTE:
        return f"Note by {event.actor}: {text}"
    data = event.data or {}
    if event.kind in (timeline.STATUS, timeline.REOPENED) and not text.startswith("Status "):
        # a status change with the person's own words: keep both what changed and why
        return f"Status {data.get('from', '?')} → {data.get('to', '?')}: {text}"
    if event.kind == timeline.RESOLVED and not text.startswith("Status "):
        return f"Resolved: {text}"
    if event.kind.startswith("incident.") or event.actor in ("", "warroom", "system"):
        return text
    return f"{text} ({event.actor})"


def draft_timeline(incident: Incident, events: Sequence[TimelineEvent]) -> list[dict[str, Any]]:
    """The incident's events in order, led by detection when it came before the declaration."""
    entries: list[dict[str, Any]] = []
    if as_utc(incident.detected_at) < as_utc(incident.declared_at):
        entries.append(
            {"at": incident.detected_at.isoformat(), "text": "Problem detected", "kind": "detected"}
        )
    for event in events:
        if event.kind in _SKIP_KINDS:
            continue
        entries.append(
            {"at": as_utc(event.at).isoformat(), "text": _label(event), "kind": event.kind}
        )
    return entries


def _events(session: Session, incident: Incident) -> Sequence[TimelineEvent]:
    return session.scalars(
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident.id)
        .order_by(TimelineEvent.at, TimelineEvent.id)
        .limit(MAX_TIMELINE)
    ).all()


def get(session: Session, *, incident: Incident) -> Postmortem | None:
    return session.scalar(select(Postmortem).where(Postmortem.incident_id == incident.id))


def get_or_raise(session: Session, *, incident: Incident) -> Postmortem:
    pm = get(session, incident=incident)
    if pm is None:
        raise NotFound(
            f"incident {incident.number} has no postmortem yet",
            hint=f"create the draft with `warroom postmortem create {incident.number}`",
        )
    return pm


def create(
    session: Session,
    *,
    incident: Incident,
    author: str,
    now: datetime,
    redactor: Redactor | None = None,
    regenerate: bool = False,
) -> Postmortem:
    """Write the first draft from the record. Raises Conflict when one exists (unless
    `regenerate` and it is still a draft, which rebuilds the timeline and keeps edited prose)."""
    existing = get(session, incident=incident)
    if existing is not None and not regenerate:
        raise Conflict(
            f"incident {incident.number} already has a postmortem ({existing.state})",
            hint="edit it, or regenerate the draft's timeline with regenerate=true",
        )
    if existing is not None and existing.state == State.PUBLISHED:
        raise Conflict(f"the postmortem of incident {incident.number} is already published")
    entries = draft_timeline(incident, _events(session, incident))
    if redactor is not None:
        entries = [{**e, "text": redactor.redact(e["text"])} for e in entries]
    if existing is not None:
        existing.timeline = entries
        existing.updated_at = now
        session.flush()
        return existing
    clean = redactor.redact if redactor is not None else (lambda s: s)
    pm = Postmortem(
        incident_id=incident.id,
        state=State.DRAFT,
        title=incident.title,
        summary=clean(incident.summary or ""),
        impact=clean(incident.customer_impact or ""),
        root_cause="",
        resolution="",
        lessons="",
        timeline=entries,
        author=author,
        created_at=now,
        updated_at=now,
        published_at=None,
    )
    try:
        with session.begin_nested():
            session.add(pm)
            session.flush()
    except IntegrityError:
        # someone else wrote the draft between our check and our insert
        raise Conflict(f"incident {incident.number} already has a postmortem") from None
    timeline.add(
        session,
        incident,
        kind=POSTMORTEM_CREATED,
        actor=author,
        at=now,
        text="Postmortem draft created",
    )
    return pm


def _parse_entry(raw: Any, index: int) -> dict[str, Any]:
    field = f"timeline.{index}"
    if not isinstance(raw, Mapping):
        raise InvalidInput("each timeline entry must be an object {at, text}", field=field)
    text = str(raw.get("text") or "").strip()
    if not text:
        raise InvalidInput("timeline entry text must not be empty", field=f"{field}.text")
    if len(text) > 2_000:
        raise InvalidInput("timeline entry longer than 2000 characters", field=f"{field}.text")
    try:
        at = datetime.fromisoformat(str(raw.get("at")))
    except ValueError:
        raise InvalidInput(
            f"timeline entry time {raw.get('at')!r} is not ISO 8601", field=f"{field}.at"
        ) from None
    if at.tzinfo is None:
        raise InvalidInput("timeline entry time needs a UTC offset", field=f"{field}.at")
    return {"at": as_utc(at).isoformat(), "text": text, "kind": str(raw.get("kind") or "edited")}


def update(
    session: Session,
    pm: Postmortem,
    *,
    changes: Mapping[str, Any],
    actor: str,
    now: datetime,
    redactor: Redactor | None = None,
) -> Postmortem:
    """Edit a draft. Raises Conflict once published, InvalidInput naming a bad field."""
    if pm.state == State.PUBLISHED:
        raise Conflict("a published postmortem cannot be edited")
    clean = redactor.redact if redactor is not None else (lambda s: s)
    for key, value in changes.items():
        if value is None:
            continue
        if key in EDITABLE:
            if not isinstance(value, str):
                raise InvalidInput(f"{key} must be text", field=key)
            if len(value) > MAX_FIELD:
                raise InvalidInput(f"{key} longer than {MAX_FIELD} characters", field=key)
            text = " ".join(value.split()) if key == "title" else value
            if key == "title" and not text:
                raise InvalidInput("title must not be empty", field="title")
            setattr(pm, key, clean(text))
        elif key == "timeline":
            if not isinstance(value, list):
                raise InvalidInput("timeline must be a list of {at, text}", field="timeline")
            if len(value) > MAX_TIMELINE:
                raise InvalidInput(f"more than {MAX_TIMELINE} timeline entries", field="timeline")
            entries = [_parse_entry(raw, i) for i, raw in enumerate(value)]
            pm.timeline = [{**e, "text": clean(e["text"])} for e in entries]
        else:
            raise InvalidInput(f"unknown field {key!r}", field=key)
    pm.updated_at = now
    session.flush()
    return pm


def publish(
    session: Session,
    pm: Postmortem,
    *,
    incident: Incident,
    actor: str,
    now: datetime,
) -> Postmortem:
    """Freeze the document; reminders stop. Raises Conflict when already published."""
    if pm.state == State.PUBLISHED:
        raise Conflict("the postmortem is already published")
    if incident.is_open:
        raise Conflict(
            f"incident {incident.number} is still open", hint="resolve it before publishing"
        )
    pm.state = State.PUBLISHED
    pm.published_at = now
    pm.updated_at = now
    timeline.add(
        session,
        incident,
        kind=POSTMORTEM_PUBLISHED,
        actor=actor,
        at=now,
        text="Postmortem published",
    )
    audit.record(
        session,
        at=now,
        actor=actor,
        action="postmortem.publish",
        target=f"incident:{incident.number}",
    )
    return pm


def action_items(session: Session, *, incident: Incident) -> Sequence[ActionItem]:
    return session.scalars(
        select(ActionItem).where(ActionItem.incident_id == incident.id).order_by(ActionItem.id)
    ).all()


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value else None


def duration(incident: Incident, now: datetime) -> timedelta:
    """From detection to resolution (or to now while still open)."""
    end = incident.resolved_at or now
    return as_utc(end) - as_utc(incident.detected_at)


def as_dict(
    pm: Postmortem, *, incident: Incident, items: Sequence[ActionItem], now: datetime
) -> dict[str, Any]:
    return {
        "incident": incidents.summary_dict(incident),
        "state": pm.state,
        "title": pm.title,
        "author": pm.author,
        "date": incident.detected_at.date().isoformat(),
        "duration_seconds": int(duration(incident, now).total_seconds()),
        "severity": incident.severity,
        "impact": pm.impact,
        "summary": pm.summary,
        "timeline": pm.timeline,
        "root_cause": pm.root_cause,
        "resolution": pm.resolution,
        "lessons": pm.lessons,
        "action_items": [_item_brief(i) for i in items],
        "created_at": _iso(pm.created_at),
        "updated_at": _iso(pm.updated_at),
        "published_at": _iso(pm.published_at),
    }


def _item_brief(item: ActionItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "title": item.title,
        "kind": item.kind,
        "owner": item.owner,
        "due_date": item.due_date.isoformat() if item.due_date else None,
        "state": item.state,
    }


def _when(at: str, *, tz: ZoneInfo, first_day: str) -> str:
    local = datetime.fromisoformat(at).astimezone(tz)
    day = local.date().isoformat()
    return local.strftime("%H:%M") if day == first_day else f"{day} {local.strftime('%H:%M')}"


def to_markdown(
    pm: Postmortem,
    *,
    incident: Incident,
    items: Sequence[ActionItem],
    config: Config,
    now: datetime,
    redactor: Redactor | None = None,
) -> str:
    """Render the document with the configured template (or the default one).

    User data reaches the template only as escaped values. Raises InvalidInput
    when a configured template is broken.
    """
    tz = ZoneInfo(config.timezone)
    start_local = as_utc(incident.detected_at).astimezone(tz)
    first_day = start_local.date().isoformat()
    sev = config.severities.get(incident.severity)  # type: ignore[call-overload]
    entries = sorted(pm.timeline or [], key=lambda e: str(e.get("at", "")))
    values: dict[str, Any] = {
        "number": incident.number,
        "title": markdown.inline(pm.title),
        "is_drill": incident.is_drill,
        "date": f"{first_day} {start_local.strftime('%H:%M')}",
        "timezone": config.timezone,
        "duration": format_duration(duration(incident, now))
        + ("" if incident.resolved_at else " (still open)"),
        "severity": incident.severity,
        "severity_name": markdown.inline(sev.name if sev else incident.severity),
        "services": [markdown.inline(s) for s in incident.services or []],
        "impact": markdown.inline(pm.impact),
        "state": pm.state,
        "summary": markdown.prose(pm.summary),
        "timeline": [
            {
                "time": _when(e["at"], tz=tz, first_day=first_day),
                "text": markdown.inline(e.get("text", "")),
            }
            for e in entries
            if e.get("at")
        ],
        "root_cause": markdown.prose(pm.root_cause),
        "resolution": markdown.prose(pm.resolution),
        "lessons": markdown.prose(pm.lessons),
        "action_items": [
            {"done": i.state in DONE_STATES, "text": markdown.inline(_item_line(i))} for i in items
        ],
        "author": markdown.inline(pm.author),
    }
    text = templating.render(
        config.templates.postmortem or markdown.DEFAULT_TEMPLATE,
        values,
        name="templates.postmortem",
    )
    return redactor.redact(text) if redactor is not None else text


def _item_line(item: ActionItem) -> str:
    parts = [item.title]
    meta = [item.kind.replace("_", " ")]
    if item.owner:
        meta.append(f"owner {item.owner}")
    if item.due_date:
        meta.append(f"due {item.due_date.isoformat()}")
    if item.state not in ("open",):
        meta.append(item.state)
    return f"{parts[0]} ({', '.join(meta)})"
