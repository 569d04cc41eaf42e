"""The `notify.delivery` handler: claim, re-check the incident, send, record.

Order per attempt, each step its own transaction:
  1. claim: lock the delivery and the incident; acknowledged or resolved ->
     cancelled, nothing sent; else state `sending`, attempts + 1.
  2. send through the channel (outside any transaction).
  3. mark sent (or failed / dead, with the reason and the next attempt).
  4. write who was paged, when and how on the incident timeline.
A crash between 2 and 3 (`after_send`) repeats the send with the same
idempotency key; a crash between 3 and 4 (`after_mark_sent`) is repaired when
the job runs again after its lease: the timeline entry is written then.

Storms: a page held back by the contact's rate limit is marked; when one of
the held pages may go, it takes the others (same contact) along as one
"N unacknowledged incidents" digest instead of a flood. The digest's key is
the carrier's key + "-digest", and after a crash the same pages are resent.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from warroom.config.schema import Channel
from warroom.core import faults
from warroom.core.logging import get_logger
from warroom.incidents import service as incidents
from warroom.incidents import timeline
from warroom.incidents.models import Incident
from warroom.jobs import queue
from warroom.jobs.models import Job
from warroom.jobs.runtime import Runtime
from warroom.jobs.worker import RetryLater
from warroom.notify import channels
from warroom.notify import service as notify
from warroom.notify.models import Delivery
from warroom.oncall.escalation import NOTIFY_FAILED, NOTIFY_SENT, is_active

log = get_logger("warroom.delivery")
RATE_WINDOW = timedelta(minutes=1)
DIGEST_MAX = 50  # pages bundled into one message during a storm
_rng = random.Random()


def _history(d: Delivery, entry: dict[str, Any]) -> None:
    hist = list(d.data.get("history", []))[-49:]
    hist.append(entry)
    d.data = {**d.data, "history": hist}  # reassign: JSON columns track assignment only


def _message(d: Delivery) -> channels.Message:
    return channels.Message(
        subject=d.subject,
        text=d.body,
        idempotency_key=d.idempotency_key,
        address=d.address,
        data=dict(d.data.get("webhook") or {}),
    )


def deliver(rt: Runtime, job: Job) -> None:
    delivery_id = int(job.payload["delivery_id"])
    claimed = _claim(rt, delivery_id, manual=bool(job.payload.get("manual")))
    if claimed is None:
        return
    channel, msg = claimed
    try:
        answer = channels.send(
            channel, msg, env=rt.env, timeout=channel.retry.timeout.total_seconds()
        )
    except channels.SendError as err:
        delay = _failed(rt, delivery_id, channel, err)
        if delay is not None:
            raise RetryLater(err.reason, delay=delay) from None
        return
    faults.hit("after_send")
    _mark_sent(rt, delivery_id, answer)
    faults.hit("after_mark_sent")
    _record(rt, delivery_id)


def _claim(
    rt: Runtime, delivery_id: int, *, manual: bool
) -> tuple[Channel, channels.Message] | None:
    now = rt.now()
    retry_in: float | None = None
    with rt.db.transaction() as s:
        d = notify.lock(s, delivery_id)
        if d is None:
            return None
        if d.state == notify.State.SENT:
            _record_in(rt, s, d)  # a crash after marking sent: finish the record
            return None
        if d.state in (notify.State.CANCELLED, notify.State.DEAD) and not manual:
            return None
        if d.incident_id is not None and d.purpose == notify.Purpose.PAGE:
            incident = incidents.lock(s, incident_id=d.incident_id)
            if incident is None or not is_active(incident):
                d.state = notify.State.CANCELLED
                d.last_error = "incident acknowledged or resolved before sending"
                d.updated_at = now
                _history(d, {"at": now.isoformat(), "event": "cancelled"})
                return None
        channel = rt.config.channels.get(d.channel)
        if channel is None:
            d.state = notify.State.DEAD
            d.last_error = f"channel {d.channel!r} is no longer configured"
            d.updated_at = now
            return None
        carrier = d.data.get("in_digest")
        if d.state == notify.State.SENDING and carrier not in (None, d.id):
            retry_in = 2.0  # another page's digest carries this one: wait for its outcome
        elif (
            d.data.get("digest") is None
            and notify.sent_recently(
                s, channel=d.channel, address=d.address, now=now, window=RATE_WINDOW
            )
            >= channel.rate_limit_per_minute
        ):
            d.data = {**d.data, "rate_limited": True}
            retry_in = 5.0 + _rng.random() * 5.0
        else:
            d.state = notify.State.SENDING
            d.attempts += 1
            d.updated_at = now
            members = _digest_members(s, d, now=now)
            msg = _digest_message(d, members) if members else _message(d)
    if retry_in is not None:
        raise RetryLater(
            f"rate limit of {channel.rate_limit_per_minute}/min for this contact", delay=retry_in
        )
    return channel, msg


def _digest_members(s: Session, d: Delivery, *, now: datetime) -> list[Delivery]:
    """Pages to the same contact held back by its rate limit, sent as one message with d.

    Bundling starts only when d itself was held back (a storm). After a crash
    the same members are used again, so the digest keeps its idempotency key.
    """
    if d.purpose != notify.Purpose.PAGE:
        return []
    if d.data.get("digest") is not None:  # resending after a crash
        ids = [int(i) for i in d.data["digest"]]
        rows = s.scalars(select(Delivery).where(Delivery.id.in_(ids)).order_by(Delivery.id))
        return [
            m for m in rows if m.data.get("in_digest") == d.id and m.state == notify.State.SENDING
        ]
    if not d.data.get("rate_limited"):
        return []
    stmt = (
        select(Delivery)
        .where(
            Delivery.channel == d.channel,
            Delivery.address == d.address,
            Delivery.purpose == notify.Purpose.PAGE,
            Delivery.state.in_([notify.State.QUEUED, notify.State.FAILED]),
            Delivery.id != d.id,
        )
        .order_by(Delivery.id)
        .limit(DIGEST_MAX * 2)
    )
    if s.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    members: list[Delivery] = []
    for m in s.scalars(stmt):
        if not m.data.get("rate_limited") or m.incident_id is None:
            continue
        incident = s.get(Incident, m.incident_id)
        if incident is None or not is_active(incident):
            continue
        members.append(m)
        if len(members) >= DIGEST_MAX - 1:
            break
    if members:
        for m in members:
            m.state = notify.State.SENDING
            m.updated_at = now
            m.data = {**m.data, "in_digest": d.id}
        d.data = {**d.data, "digest": [m.id for m in members], "in_digest": d.id}
    return members


def _digest_message(d: Delivery, members: list[Delivery]) -> channels.Message:
    pages = [d, *members]
    lines = [f"{len(pages)} unacknowledged incidents are paging you:", ""]
    for page in pages:
        ack = next((ln for ln in page.body.splitlines() if ln.startswith("Acknowledge:")), "")
        lines += [page.subject, f"  {ack}", ""]
    return channels.Message(
        subject=f"[warroom] {len(pages)} unacknowledged incidents",
        text="\n".join(lines),
        idempotency_key=d.idempotency_key + "-digest",
        address=d.address,
        data={"event": "digest", "pages": [dict(p.data.get("webhook") or {}) for p in pages]},
    )


def _release_digest(s: Session, d: Delivery) -> None:
    """A digest attempt failed: its members go back to being pages of their own."""
    ids = [int(i) for i in d.data.get("digest") or []]
    if ids:
        for m in s.scalars(select(Delivery).where(Delivery.id.in_(ids))):
            if m.data.get("in_digest") == d.id and m.state == notify.State.SENDING:
                m.state = notify.State.QUEUED
                m.data = {k: v for k, v in m.data.items() if k != "in_digest"}
    d.data = {k: v for k, v in d.data.items() if k not in ("digest", "in_digest")}


def _failed(
    rt: Runtime, delivery_id: int, channel: Channel, err: channels.SendError
) -> float | None:
    """Record a failed attempt; returns the delay before the next one, or None when done."""
    now = rt.now()
    reason = rt.redactor.redact(err.reason)
    with rt.db.transaction() as s:
        d = notify.lock(s, delivery_id)
        if d is None:
            return None
        d.last_error = reason
        d.updated_at = now
        _release_digest(s, d)
        entry: dict[str, Any] = {"at": now.isoformat(), "attempt": d.attempts, "error": reason}
        if err.retryable and d.attempts < channel.retry.max_attempts:
            delay = queue.backoff(
                d.attempts,
                base=channel.retry.backoff_base.total_seconds(),
                cap=channel.retry.backoff_cap.total_seconds(),
                rng=_rng,
            )
            if err.retry_after is not None:
                delay = max(delay, err.retry_after)
            d.state = notify.State.FAILED
            entry["retry_in"] = round(delay, 3)
            _history(d, entry)
            log.info("delivery_retry", delivery=d.id, channel=d.channel, delay=round(delay, 2))
            return delay
        d.state = notify.State.DEAD
        entry["dead"] = True
        _history(d, entry)
        log.warning("delivery_dead", delivery=d.id, channel=d.channel, reason=reason)
        _on_dead(rt, s, d, channel, reason)
        return None


def _on_dead(rt: Runtime, s: Session, d: Delivery, channel: Channel, reason: str) -> None:
    now = rt.now()
    fallback_id = channel.fallback
    note = ""
    if fallback_id and fallback_id in rt.config.channels:
        target = _fallback_target(rt, d, fallback_id)
        if target is not None:
            row = notify.create(
                s,
                incident_id=d.incident_id,
                purpose=d.purpose,
                level=d.level,
                round_=d.round,
                target=target,
                subject=d.subject,
                body=d.body,
                now=now,
                data={"webhook": d.data.get("webhook", {})},
                fallback_of=d.id,
                channel=rt.config.channels[fallback_id],
                priority=notify.PRIORITY_FIRST,
            )
            if row is not None:
                note = f"; falling back to {fallback_id}"
    if d.incident_id is None or d.purpose != notify.Purpose.PAGE:
        return
    incident = incidents.lock(s, incident_id=d.incident_id)
    if incident is None:
        return
    timeline.add(
        s,
        incident,
        kind=NOTIFY_FAILED,
        actor="warroom",
        at=now,
        text=f"Page to {d.recipient} via {d.channel} failed after {d.attempts} attempt(s): "
        f"{reason}{note}",
        data={
            "delivery_id": d.id,
            "recipient": d.recipient,
            "channel": d.channel,
            "level": d.level,
            "round": d.round,
            "fallback": fallback_id if note else None,
        },
        redactor=rt.redactor,
    )


def _fallback_target(rt: Runtime, d: Delivery, channel_id: str) -> notify.Target | None:
    if d.recipient.startswith("channel:"):
        found = notify.channel_target(rt.config, channel_id)
        smtp_without_to = (
            found is not None
            and not found.address
            and (rt.config.channels[channel_id].type == "smtp")
        )
        return None if smtp_without_to else found
    for target in notify.contact_targets(rt.config, d.recipient):
        if target.channel == channel_id:
            return target
    channel = rt.config.channels[channel_id]
    person = rt.config.person(d.recipient)
    if channel.type == "smtp":
        address = person.email if person else None
        return notify.Target(d.recipient, channel_id, address) if address else None
    return notify.Target(d.recipient, channel_id, "")


def _mark_sent(rt: Runtime, delivery_id: int, answer: str) -> None:
    now = rt.now()
    with rt.db.transaction() as s:
        d = notify.lock(s, delivery_id)
        if d is None:
            return
        for row in [d, *_carried(s, d)]:
            row.state = notify.State.SENT
            row.sent_at = now
            row.updated_at = now
            row.last_error = None
            _history(row, {"at": now.isoformat(), "attempt": d.attempts, "result": answer[:200]})


def _carried(s: Session, d: Delivery) -> list[Delivery]:
    ids = [int(i) for i in d.data.get("digest") or []]
    if not ids:
        return []
    rows = s.scalars(select(Delivery).where(Delivery.id.in_(ids)))
    return [m for m in rows if m.data.get("in_digest") == d.id]


def _record(rt: Runtime, delivery_id: int) -> None:
    with rt.db.transaction() as s:
        d = notify.lock(s, delivery_id)
        if d is not None:
            for row in [d, *_carried(s, d)]:
                _record_in(rt, s, row)


def _record_in(rt: Runtime, s: Session, d: Delivery) -> None:
    """Who was paged, when and how, on the timeline (once per delivery)."""
    if d.data.get("recorded") or d.incident_id is None or d.purpose != notify.Purpose.PAGE:
        return
    incident = incidents.lock(s, incident_id=d.incident_id)
    if incident is None:
        return
    sent = d.sent_at or rt.now()
    timeline.add(
        s,
        incident,
        kind=NOTIFY_SENT,
        actor="warroom",
        at=sent,
        text=f"Paged {d.recipient} via {d.channel} (level {d.level + 1}, round {d.round + 1})"
        + (" in a digest of several incidents" if d.data.get("in_digest") else ""),
        data={
            "delivery_id": d.id,
            "recipient": d.recipient,
            "channel": d.channel,
            "level": d.level,
            "round": d.round,
            "idempotency_key": d.idempotency_key,
            "attempts": d.attempts,
        },
        redactor=rt.redactor,
    )
    d.data = {**d.data, "recorded": True}
