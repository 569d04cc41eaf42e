"""Action items: owner, due date, state and kind; runbook updates close themselves.

A runbook-update item remembers the runbook file's hash when it was created;
when the file changes (a new `last_reviewed` or any edit) the sweep closes it
with a reason saying what changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from warroom.core.clock import as_utc
from warroom.core.errors import Conflict, InvalidInput, NotFound
from warroom.core.redact import Redactor
from warroom.incidents.models import Incident
from warroom.postmortems.models import ActionItem
from warroom.postmortems.runbookrefs import RunbookInfo, find
from warroom.store import audit

MAX_TITLE = 300


class Kind(StrEnum):
    PREVENTIVE = "preventive"
    MONITORING = "monitoring"
    RUNBOOK_UPDATE = "runbook_update"
    OTHER = "other"


class State(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    WONTFIX = "wontfix"


OPEN_STATES = (State.OPEN.value, State.IN_PROGRESS.value)


def parse_kind(value: str) -> Kind:
    try:
        return Kind(str(value).strip().lower().replace("-", "_"))
    except ValueError:
        raise InvalidInput(
            f"unknown action item kind {value!r}",
            field="kind",
            hint="use preventive, monitoring, runbook_update or other",
        ) from None


def parse_state(value: str) -> State:
    try:
        return State(str(value).strip().lower().replace("-", "_"))
    except ValueError:
        raise InvalidInput(
            f"unknown action item state {value!r}",
            field="state",
            hint="use open, in_progress, done or wontfix",
        ) from None


def parse_due(value: str | date | None) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(f"due date {value!r} is not YYYY-MM-DD", field="due_date") from None


def _title(value: str) -> str:
    text = " ".join(str(value).split())
    if not text:
        raise InvalidInput("title must not be empty", field="title")
    if len(text) > MAX_TITLE:
        raise InvalidInput(f"title longer than {MAX_TITLE} characters", field="title")
    return text


def create(
    session: Session,
    *,
    title: str,
    kind: str,
    now: datetime,
    actor: str,
    incident: Incident | None = None,
    owner: str = "",
    due_date: str | date | None = None,
    runbook_id: str | None = None,
    catalog: Iterable[RunbookInfo] = (),
    redactor: Redactor | None = None,
) -> ActionItem:
    """Add an item. A runbook_update item needs a runbook that exists (its hash is kept)."""
    k = parse_kind(kind)
    runbook_hash: str | None = None
    if k == Kind.RUNBOOK_UPDATE:
        if not runbook_id:
            raise InvalidInput(
                "a runbook_update item needs the runbook it updates", field="runbook"
            )
        runbook_hash = find(catalog, runbook_id).file_hash
    elif runbook_id:
        find(catalog, runbook_id)  # a link to a runbook must still name a real one
    clean_title = _title(title)
    if redactor is not None:
        clean_title = redactor.redact(clean_title)
    item = ActionItem(
        incident_id=incident.id if incident is not None else None,
        title=clean_title,
        kind=k.value,
        owner=" ".join(str(owner).split())[:100],
        due_date=parse_due(due_date),
        state=State.OPEN.value,
        runbook_id=runbook_id or None,
        runbook_hash=runbook_hash,
        created_at=now,
        closed_at=None,
        closed_reason="",
    )
    session.add(item)
    session.flush()
    audit.record(
        session, at=now, actor=actor, action="action_item.create", target=f"action:{item.id}"
    )
    return item


def get_or_raise(session: Session, item_id: int) -> ActionItem:
    item = session.get(ActionItem, item_id)
    if item is None:
        raise NotFound(f"action item {item_id} does not exist", field="id")
    return item


def update(
    session: Session,
    item: ActionItem,
    *,
    now: datetime,
    actor: str,
    title: str | None = None,
    owner: str | None = None,
    due_date: str | date | None = None,
    state: str | None = None,
    reason: str = "",
) -> ActionItem:
    if title is not None:
        item.title = _title(title)
    if owner is not None:
        item.owner = " ".join(owner.split())[:100]
    if due_date is not None:
        item.due_date = parse_due(due_date)
    if state is not None:
        set_state(session, item, state=state, now=now, actor=actor, reason=reason)
    session.flush()
    return item


def set_state(
    session: Session, item: ActionItem, *, state: str, now: datetime, actor: str, reason: str = ""
) -> None:
    new = parse_state(state)
    if new.value == item.state:
        return
    if new.value in OPEN_STATES:
        item.closed_at = None
        item.closed_reason = ""
    else:
        if item.state not in OPEN_STATES:
            raise Conflict(f"action item {item.id} is already {item.state}")
        item.closed_at = now
        item.closed_reason = reason or f"marked {new.value} by {actor}"
    item.state = new.value
    audit.record(
        session,
        at=now,
        actor=actor,
        action=f"action_item.{new.value}",
        target=f"action:{item.id}",
        detail={"reason": item.closed_reason} if item.closed_reason else None,
    )


def list_items(
    session: Session,
    *,
    open_only: bool = False,
    incident: Incident | None = None,
    owner: str | None = None,
    limit: int = 500,
) -> Sequence[ActionItem]:
    stmt = select(ActionItem)
    if open_only:
        stmt = stmt.where(ActionItem.state.in_(OPEN_STATES))
    if incident is not None:
        stmt = stmt.where(ActionItem.incident_id == incident.id)
    if owner:
        stmt = stmt.where(ActionItem.owner == owner)
    return session.scalars(stmt.order_by(ActionItem.id).limit(limit)).all()


def overdue_actions(session: Session, today: date) -> Sequence[ActionItem]:
    """Open or in-progress items whose due date has passed, oldest due first (for the dashboard)."""
    return session.scalars(
        select(ActionItem)
        .where(
            ActionItem.state.in_(OPEN_STATES),
            ActionItem.due_date.is_not(None),
            ActionItem.due_date < today,
        )
        .order_by(ActionItem.due_date, ActionItem.id)
    ).all()


def close_updated_runbook_items(
    session: Session, *, catalog: Iterable[RunbookInfo], now: datetime
) -> list[ActionItem]:
    """Close runbook_update items whose runbook file changed since they were created.

    A runbook that disappeared is left alone: deleting a runbook is not updating it.
    """
    by_id = {ref.id: ref for ref in catalog}
    closed: list[ActionItem] = []
    items = session.scalars(
        select(ActionItem).where(
            ActionItem.kind == Kind.RUNBOOK_UPDATE.value, ActionItem.state.in_(OPEN_STATES)
        )
    ).all()
    for item in items:
        ref = by_id.get(item.runbook_id or "")
        if ref is None or not item.runbook_hash or ref.file_hash == item.runbook_hash:
            continue
        created_day = as_utc(item.created_at).date()
        if ref.last_reviewed is not None and ref.last_reviewed >= created_day:
            who = f" by {ref.reviewed_by}" if ref.reviewed_by else ""
            reason = f"runbook {ref.id} reviewed on {ref.last_reviewed.isoformat()}{who}"
        else:
            reason = (
                f"runbook {ref.id} changed (file hash {item.runbook_hash[:12]} → "
                f"{ref.file_hash[:12]})"
            )
        item.state = State.DONE.value
        item.closed_at = now
        item.closed_reason = reason
        audit.record(
            session,
            at=now,
            actor="warroom",
            action="action_item.done",
            target=f"action:{item.id}",
            detail={"reason": reason},
        )
        closed.append(item)
    session.flush()
    return closed


def as_dict(
    item: ActionItem, *, today: date | None = None, incident_number: int | None = None
) -> dict[str, Any]:
    return {
        "id": item.id,
        "incident": incident_number,
        "title": item.title,
        "kind": item.kind,
        "owner": item.owner,
        "due_date": item.due_date.isoformat() if item.due_date else None,
        "state": item.state,
        "overdue": bool(
            today is not None
            and item.due_date is not None
            and item.due_date < today
            and item.state in OPEN_STATES
        ),
        "runbook": item.runbook_id,
        "runbook_hash": item.runbook_hash,
        "created_at": as_utc(item.created_at).isoformat(),
        "closed_at": as_utc(item.closed_at).isoformat() if item.closed_at else None,
        "closed_reason": item.closed_reason,
    }
