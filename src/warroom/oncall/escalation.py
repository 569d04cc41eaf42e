"""The escalation engine: snapshot the policy, fire due levels, repeat rounds, recover lost timers.

State lives on the incident (snapshot, last fired level and round, due time of
the next level); jobs only wake the engine up. Every entry point locks the
incident and re-derives what is due from that state, so a duplicated job fires
nothing twice and a lost job is made up by the sweep.

Timing: a level's `after` counts from the start of escalation. A round lasts
until the last level plus the gap before it (one more step of the same
length), so with levels at 0m and 15m and `repeat: 2` the levels fire at
0, 15, 30, 45, 60 and 75 minutes. A round with a single level repeats every
`after` of that level, or every 5 minutes when that is 0.

Catching up (the worker was down): levels still due in the current round
fire in order, but rounds that passed entirely are skipped, never replayed,
so nobody gets a burst of stale pages.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from warroom.config.schema import EscalationPolicy
from warroom.core.clock import as_utc
from warroom.core.logging import get_logger
from warroom.core.security import sign
from warroom.incidents import service as incidents
from warroom.incidents import timeline
from warroom.incidents.models import Incident, Status
from warroom.jobs import queue
from warroom.jobs.runtime import Runtime
from warroom.notify import message
from warroom.notify import service as notify
from warroom.notify.models import Delivery
from warroom.oncall import service as oncall

log = get_logger("warroom.escalation")

JOB_LEVEL = "escalation.level"
DEFAULT_REPEAT_GAP = timedelta(minutes=5)
SWEEP_GRACE = timedelta(seconds=3)  # let the job fire first; the sweep is the backstop

# timeline kinds written by this domain
ESCALATION_STARTED = "escalation.started"
ESCALATION_LEVEL = "escalation.level"
ESCALATION_NONE = "escalation.none"
ESCALATION_EXHAUSTED = "escalation.exhausted"
NOTIFY_SENT = "notify.sent"
NOTIFY_FAILED = "notify.failed"


def is_active(incident: Incident) -> bool:
    return incident.acknowledged_at is None and incident.status != Status.RESOLVED


# ------------------------------------------------------------------ timing
def _levels(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    levels = snapshot.get("levels") or []
    return list(levels)


def _after(level: dict[str, Any]) -> timedelta:
    return timedelta(seconds=float(level.get("after_seconds", 0)))


def round_length(snapshot: dict[str, Any]) -> timedelta:
    levels = _levels(snapshot)
    if not levels:
        return DEFAULT_REPEAT_GAP
    last = _after(levels[-1])
    gap = last - _after(levels[-2]) if len(levels) >= 2 else last
    if gap <= timedelta(0):
        gap = DEFAULT_REPEAT_GAP
    return last + gap


def due_at(snapshot: dict[str, Any], started: datetime, round_: int, level: int) -> datetime:
    return as_utc(started) + round_ * round_length(snapshot) + _after(_levels(snapshot)[level])


def _positions(snapshot: dict[str, Any]) -> list[tuple[int, int]]:
    n = len(_levels(snapshot))
    return [(r, lvl) for r in range(int(snapshot.get("repeat", 0)) + 1) for lvl in range(n)]


def next_position(snapshot: dict[str, Any], pos: tuple[int, int]) -> tuple[int, int] | None:
    later = [p for p in _positions(snapshot) if p > pos]
    return later[0] if later else None


def snapshot_of(name: str, policy: EscalationPolicy) -> dict[str, Any]:
    """A JSON copy of the policy, so a config reload never reroutes a page in flight."""
    return {
        "name": name,
        "repeat": policy.repeat,
        "levels": [
            {
                "notify": list(level.notify),
                "after_seconds": level.after.total_seconds(),
                "channels": list(level.channels) if level.channels is not None else None,
            }
            for level in policy.levels
        ],
    }


# ------------------------------------------------------------------ entry points
def start(
    rt: Runtime,
    session: Session,
    incident: Incident,
    *,
    generation: int,
    since: datetime | None = None,
) -> None:
    """Begin escalation for an opened (or re-planned) incident; idempotent.

    `since` is when the incident opened or its severity changed (the job's
    creation time): levels count from then, so a worker that picks the job up
    late pages at once whatever is already due instead of starting the clock over.
    """
    now = rt.now()
    started = min(as_utc(since), now) if since is not None else now
    if generation != incident.escalation_generation or not is_active(incident):
        return
    if incident.escalation_snapshot is not None:
        return  # already started for this generation
    name = incident.escalation_policy
    policy = rt.config.escalation_policies.get(name) if name else None
    if policy is None or not policy.levels:
        reason = (
            f"escalation policy {name!r} has no levels: nobody is paged"
            if policy is not None
            else (
                f"escalation policy {name!r} is not configured: nobody is paged"
                if name
                else "no escalation policy for this severity: nobody is paged"
            )
        )
        incident.escalation_snapshot = snapshot_of(name or "", policy or EscalationPolicy())
        incident.escalation_started_at = now
        incident.next_escalation_at = None
        timeline.add(
            session,
            incident,
            kind=ESCALATION_NONE,
            actor="warroom",
            at=now,
            text=reason,
            data={"policy": name},
        )
        return
    snap = snapshot_of(name or "", policy)
    incident.escalation_snapshot = snap
    incident.escalation_started_at = started
    incident.escalation_level = -1
    incident.escalation_round = 0
    incident.next_escalation_at = due_at(snap, started, 0, 0)
    timeline.add(
        session,
        incident,
        kind=ESCALATION_STARTED,
        actor="warroom",
        at=now,
        text=f"Escalation policy {name} started ({len(policy.levels)} level(s), "
        f"repeat {policy.repeat})",
        data={"policy": snap},
    )
    advance(rt, session, incident)


def advance(rt: Runtime, session: Session, incident: Incident) -> int:
    """Fire every level that is due now; plan the next one. Returns levels fired."""
    now = rt.now()
    snap = incident.escalation_snapshot
    started = incident.escalation_started_at
    if not is_active(incident) or snap is None or started is None or not _levels(snap):
        return 0
    pos = (incident.escalation_round, incident.escalation_level)
    due = [p for p in _positions(snap) if p > pos and due_at(snap, started, *p) <= now]
    fired = 0
    if due:
        latest_round = due[-1][0]
        # a round that passed entirely is skipped, not replayed
        for r, lvl in (p for p in due if p[0] == latest_round):
            _fire(rt, session, incident, round_=r, level=lvl)
            incident.escalation_round, incident.escalation_level = r, lvl
            fired += 1
        if latest_round > pos[0] and pos[1] >= 0:
            log.info("escalation_rounds_skipped", incident=incident.number, to_round=latest_round)
    nxt = next_position(snap, (incident.escalation_round, incident.escalation_level))
    if nxt is None:
        if incident.next_escalation_at is not None or fired:
            incident.next_escalation_at = None
            timeline.add(
                session,
                incident,
                kind=ESCALATION_EXHAUSTED,
                actor="warroom",
                at=now,
                text="Every escalation level has been paged; nobody has acknowledged yet",
                data={"rounds": int(snap.get("repeat", 0)) + 1},
            )
        return fired
    when = due_at(snap, started, *nxt)
    incident.next_escalation_at = when
    queue.enqueue(
        session,
        kind=JOB_LEVEL,
        payload={
            "incident_id": incident.id,
            "generation": incident.escalation_generation,
            "round": nxt[0],
            "level": nxt[1],
        },
        now=now,
        run_at=when,
        incident_id=incident.id,
        dedup_key=f"esc:{incident.id}:{incident.escalation_generation}:{nxt[0]}:{nxt[1]}",
        priority=notify.PRIORITY_FIRST,
    )
    return fired


def sweep(rt: Runtime) -> None:
    """Backstop: fire levels whose job was lost; cancel deliveries of acked incidents."""
    now = rt.now()
    with rt.db.read() as s:
        ids = list(
            s.scalars(
                select(Incident.id).where(
                    Incident.next_escalation_at <= now - SWEEP_GRACE,
                    Incident.acknowledged_at.is_(None),
                    Incident.status != Status.RESOLVED,
                )
            )
        )
    for incident_id in ids[:500]:
        with rt.db.transaction() as s:
            incident = incidents.lock(s, incident_id=incident_id)
            if incident is None:
                continue
            if advance(rt, s, incident):
                log.warning("escalation_recovered_by_sweep", incident=incident.number)
    _cancel_stale_deliveries(rt)


def _cancel_stale_deliveries(rt: Runtime) -> None:
    """Mark queued/failed pages of acknowledged or resolved incidents cancelled (for the log)."""
    now = rt.now()
    with rt.db.transaction() as s:
        rows = s.execute(
            select(Delivery, Incident)
            .join(Incident, Incident.id == Delivery.incident_id)
            .where(
                Delivery.state.in_([notify.State.QUEUED, notify.State.FAILED]),
                Delivery.purpose == notify.Purpose.PAGE,
                (Incident.acknowledged_at.is_not(None)) | (Incident.status == Status.RESOLVED),
            )
            .limit(500)
        ).all()
        for delivery, _incident in rows:
            delivery.state = notify.State.CANCELLED
            delivery.last_error = "incident acknowledged or resolved before sending"
            delivery.updated_at = now


# ------------------------------------------------------------------ one level
def ack_url(rt: Runtime, incident: Incident, *, recipient: str) -> str:
    now = rt.now()
    exp = now + rt.config.policies.ack_link_ttl
    token = sign(
        {"i": incident.id, "n": incident.number, "who": recipient, "exp": int(exp.timestamp())},
        key=rt.settings.secret_key,
        purpose="ack",
    )
    return f"{public_url(rt)}/ack/{token}"


def public_url(rt: Runtime) -> str:
    return (rt.settings.public_url or rt.settings.client_url).rstrip("/")


def page_info(
    rt: Runtime, incident: Incident, *, recipient: str, level: int, round_: int
) -> message.PageInfo:
    war_room = {k: v for k, v in rt.config.war_room.model_dump().items() if v}
    return message.PageInfo(
        number=incident.number,
        title=rt.redactor.redact(incident.title),  # pages leave the building: no secrets
        severity=incident.severity,
        status=incident.status,
        services=[rt.redactor.redact(x) for x in incident.services or []],
        url=f"{public_url(rt)}/incidents/{incident.number}",
        ack_url=ack_url(rt, incident, recipient=recipient),
        war_room=war_room,
        level=level,
        round=round_,
    )


def resolve_targets(
    rt: Runtime, session: Session, targets: list[str], *, channels: list[str] | None
) -> tuple[list[notify.Target], list[str]]:
    """Targets at this instant -> contacts, plus problems (nobody on call, ...)."""
    config = rt.config
    people: list[str] = []
    out: list[notify.Target] = []
    problems: list[str] = []
    for target in targets:
        kind, _, ident = target.partition(":")
        if kind == "schedule":
            if config.schedule(ident) is None:
                problems.append(f"schedule {ident!r} is not configured")
                continue
            who = oncall.who(session, config=config, schedule_id=ident, at=rt.now())
            if who.person is None:
                problems.append(f"nobody is on call for schedule {ident!r}")
            else:
                people.append(who.person)
        elif kind == "person":
            people.append(ident)
        elif kind == "team":
            team_id, _, sub = ident.partition(":")
            team = config.team(team_id)
            if team is None:
                problems.append(f"team {team_id!r} is not configured")
            elif sub == "lead":
                if team.lead:
                    people.append(team.lead)
                else:
                    problems.append(f"team {team_id!r} has no lead")
            else:
                people.extend(team.members)
        elif kind == "channel":
            found = notify.channel_target(config, ident)
            if found is None:
                problems.append(f"channel {ident!r} is not configured")
            else:
                out.append(found)
    for person in dict.fromkeys(people):
        contacts = notify.contact_targets(config, person, only=channels)
        if not contacts:
            problems.append(f"{person} has no usable contact method")
        out.extend(contacts)
    return out, problems


def _fire(rt: Runtime, session: Session, incident: Incident, *, round_: int, level: int) -> None:
    now = rt.now()
    snap = incident.escalation_snapshot or {}
    spec = _levels(snap)[level]
    targets, problems = resolve_targets(
        rt, session, list(spec["notify"]), channels=spec.get("channels")
    )
    created: list[str] = []
    for target in targets:
        info = page_info(rt, incident, recipient=target.recipient, level=level, round_=round_)
        person = rt.config.person(target.recipient)
        subject, body = message.page(
            info, recipient_name=person.name if person else target.recipient
        )
        row = notify.create(
            session,
            incident_id=incident.id,
            purpose=notify.Purpose.PAGE,
            level=level,
            round_=round_,
            target=target,
            subject=subject,
            body=body,
            now=now,
            data={"webhook": message.webhook_data(info)},
            channel=rt.config.channels.get(target.channel),
            priority=notify.PRIORITY_FIRST if (level, round_) == (0, 0) else notify.PRIORITY_REPEAT,
        )
        if row is not None:
            created.append(f"{target.recipient} via {target.channel}")
    text = f"Escalation level {level + 1} (round {round_ + 1}): paging " + (
        ", ".join(created) if created else "nobody"
    )
    if problems:
        text += "; " + "; ".join(problems)
    timeline.add(
        session,
        incident,
        kind=ESCALATION_LEVEL,
        actor="warroom",
        at=now,
        text=text,
        data={
            "level": level,
            "round": round_,
            "targets": spec["notify"],
            "deliveries": created,
            "problems": problems,
        },
        redactor=rt.redactor,
    )
