"""Delivery rows: one per (incident, purpose, level, round, recipient, channel), plus their jobs.

Creating a delivery and its `notify.delivery` job happen in the caller's
transaction; the unique key makes a duplicated escalation job insert nothing.
The handler that sends lives in the on-call domain, because it re-checks the
incident before every send.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NotRequired, TypedDict, Unpack

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warroom.config.schema import Channel, Config
from warroom.core.clock import as_utc
from warroom.core.errors import Conflict, NotFound
from warroom.jobs import queue
from warroom.notify.models import Delivery

JOB_DELIVERY = "notify.delivery"
# The first page of an incident runs ahead of repeats and later levels.
PRIORITY_FIRST = 5
PRIORITY_REPEAT = 20


class State(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # last attempt failed, another is scheduled
    DEAD = "dead"  # gave up (permanent error or attempts used up); fallback may follow
    CANCELLED = "cancelled"  # incident acknowledged or resolved before sending


FINAL = {State.SENT, State.DEAD, State.CANCELLED}


class Purpose(StrEnum):
    PAGE = "page"
    TEST = "test"
    ADMIN = "admin"


@dataclass(frozen=True)
class Target:
    """One resolved contact: who, through which channel, at which address."""

    recipient: str  # person id, or channel:ID for channel targets
    channel: str
    address: str


def idempotency_key(
    incident_id: int | None, purpose: str, level: int, round_: int, recipient: str, channel: str
) -> str:
    raw = f"{incident_id}|{purpose}|{level}|{round_}|{recipient}|{channel}"
    return "wr-" + hashlib.sha256(raw.encode()).hexdigest()[:40]


def contact_targets(
    config: Config, person_id: str, *, only: list[str] | None = None
) -> list[Target]:
    """A person's contact methods (in order), limited to `only` channels when given.

    A person without contact methods gets email through the first smtp channel.
    """
    person = config.person(person_id)
    if person is None:
        return []
    methods = [(m.channel, m.address) for m in person.contact]
    if not methods and person.email:
        smtp = next((cid for cid, c in config.channels.items() if c.type == "smtp"), None)
        if smtp:
            methods = [(smtp, None)]
    out: list[Target] = []
    for channel_id, given in methods:
        channel = config.channels.get(channel_id)
        if channel is None or (only is not None and channel_id not in only):
            continue
        address = given or (person.email if channel.type == "smtp" else None)
        if channel.type == "smtp" and not address:
            continue
        out.append(Target(person_id, channel_id, address or ""))
    return out


def channel_target(config: Config, channel_id: str) -> Target | None:
    channel = config.channels.get(channel_id)
    if channel is None:
        return None
    return Target(f"channel:{channel_id}", channel_id, channel.to or "")


class RowFields(TypedDict):
    """What identifies and fills one delivery row (shared by create and create_row)."""

    incident_id: int | None
    purpose: str
    level: int
    round_: int
    target: Target
    subject: str
    body: str
    now: datetime
    data: NotRequired[dict[str, Any] | None]
    fallback_of: NotRequired[int | None]


def create(
    session: Session,
    *,
    channel: Channel | None = None,
    priority: int = PRIORITY_REPEAT,
    **fields: Unpack[RowFields],
) -> Delivery | None:
    """Insert a delivery and its job; None when this exact delivery already exists."""
    delivery = create_row(session, **fields)
    if delivery is None:
        return None
    max_attempts = channel.retry.max_attempts if channel else 8
    queue.enqueue(
        session,
        kind=JOB_DELIVERY,
        payload={"delivery_id": delivery.id},
        now=fields["now"],
        incident_id=fields["incident_id"],
        dedup_key=f"delivery:{delivery.id}:0",
        # the delivery counts its own attempts; the job only needs headroom
        max_attempts=max_attempts + 50,
        priority=priority,
    )
    return delivery


def create_row(session: Session, **fields: Unpack[RowFields]) -> Delivery | None:
    """Insert the delivery row only (no job); None when it already exists."""
    target, now = fields["target"], fields["now"]
    incident_id, purpose = fields["incident_id"], fields["purpose"]
    level, round_ = fields["level"], fields["round_"]
    key = idempotency_key(incident_id, purpose, level, round_, target.recipient, target.channel)
    if session.scalar(select(Delivery.id).where(Delivery.idempotency_key == key)) is not None:
        return None
    delivery = Delivery(
        incident_id=incident_id,
        purpose=purpose,
        level=level,
        round=round_,
        recipient=target.recipient,
        channel=target.channel,
        address=target.address,
        idempotency_key=key,
        state=State.QUEUED,
        attempts=0,
        fallback_of=fields.get("fallback_of"),
        subject=fields["subject"],
        body=fields["body"],
        data=fields.get("data") or {},
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(delivery)
            session.flush()
    except IntegrityError:
        return None  # a concurrent worker inserted the same delivery first
    return delivery


def lock(session: Session, delivery_id: int) -> Delivery | None:
    stmt = select(Delivery).where(Delivery.id == delivery_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def sent_recently(
    session: Session, *, channel: str, address: str, now: datetime, window: timedelta
) -> int:
    """Deliveries sent to this contact in the window (per-contact rate limit)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.channel == channel,
                Delivery.address == address,
                Delivery.state == State.SENT,
                Delivery.sent_at >= now - window,
            )
        )
        or 0
    )


def for_incident(session: Session, *, incident_id: int) -> list[Delivery]:
    return list(
        session.scalars(
            select(Delivery).where(Delivery.incident_id == incident_id).order_by(Delivery.id)
        )
    )


def get_or_raise(session: Session, delivery_id: int) -> Delivery:
    row = session.get(Delivery, delivery_id)
    if row is None:
        raise NotFound(f"delivery {delivery_id} does not exist", field="id")
    return row


def requeue(session: Session, delivery: Delivery, *, now: datetime, actor: str) -> None:
    """Operator retry of a dead or failed delivery. Raises Conflict for other states."""
    if delivery.state not in (State.DEAD, State.FAILED, State.CANCELLED):
        raise Conflict(
            f"delivery {delivery.id} is {delivery.state}; only dead, failed or cancelled "
            "deliveries can be retried",
            field="id",
        )
    retries = int(delivery.data.get("manual_retries", 0)) + 1
    delivery.data = {**delivery.data, "manual_retries": retries, "retried_by": actor}
    delivery.state = State.QUEUED
    delivery.attempts = 0
    delivery.last_error = None
    delivery.updated_at = now
    queue.enqueue(
        session,
        kind=JOB_DELIVERY,
        payload={"delivery_id": delivery.id, "manual": True},
        now=now,
        incident_id=delivery.incident_id,
        dedup_key=f"delivery:{delivery.id}:{retries}",
        max_attempts=100,
        priority=PRIORITY_FIRST,
    )


def as_dict(d: Delivery) -> dict[str, Any]:
    def iso(v: datetime | None) -> str | None:
        return as_utc(v).isoformat() if v else None

    return {
        "id": d.id,
        "incident_id": d.incident_id,
        "purpose": d.purpose,
        "level": d.level,
        "round": d.round,
        "recipient": d.recipient,
        "channel": d.channel,
        "state": d.state,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "idempotency_key": d.idempotency_key,
        "fallback_of": d.fallback_of,
        "subject": d.subject,
        "created_at": iso(d.created_at),
        "updated_at": iso(d.updated_at),
        "sent_at": iso(d.sent_at),
        "history": d.data.get("history", []),
    }


def recent(session: Session, *, state: str | None, limit: int) -> list[Delivery]:
    stmt = select(Delivery)
    if state is not None:
        stmt = stmt.where(Delivery.state == state)
    return list(session.scalars(stmt.order_by(Delivery.id.desc()).limit(limit)))
