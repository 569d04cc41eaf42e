"""On-call API: who is on call, shifts, ICS, overrides, delivery log, retries and test pages.

`install(app)` also starts the watchdog thread that emails the admins when no
worker has checked in (a path that does not depend on the worker).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.types import ASGIApp, Receive, Scope, Send

from warroom.auth.models import Role, User
from warroom.core.errors import InvalidInput, NotFound, Unauthenticated
from warroom.core.security import sign, unsign
from warroom.incidents import service as incidents
from warroom.notify import channels, message
from warroom.notify import service as notify
from warroom.notify.watchdog import Watchdog
from warroom.oncall import ics
from warroom.oncall import service as oncall
from warroom.oncall.escalation import public_url
from warroom.oncall.schedule import Shift
from warroom.web.deps import Responder, RuntimeDep, Viewer, public

router = APIRouter(prefix="/api/v1", tags=["oncall"])
MAX_DAYS = 366
MIN_YEAR, MAX_YEAR = 1971, 2999  # keeps every date computation far from datetime's limits
Id = Annotated[int, Path(ge=1, le=2_000_000_000)]


def parse_at(value: str | None, rt_now: datetime, *, field: str = "at") -> datetime:
    """ISO 8601 with an offset (or Z). Raises InvalidInput naming the field."""
    if value is None or value == "":
        return rt_now
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise InvalidInput(
            f"{field}: {value[:60]!r} is not an ISO 8601 time",
            field=field,
            hint="e.g. 2026-12-24T09:00:00+01:00",
        ) from None
    if at.tzinfo is None:
        raise InvalidInput(f"{field}: the time needs a UTC offset (or Z)", field=field)
    if not MIN_YEAR <= at.year <= MAX_YEAR:
        raise InvalidInput(f"{field}: year must be between {MIN_YEAR} and {MAX_YEAR}", field=field)
    return at


def _shift(rt: Any, s: Shift) -> dict[str, Any]:
    person = rt.config.person(s.person)
    return {
        "person": s.person,
        "name": person.name if person else s.person,
        "from": s.starts_at.isoformat(),
        "to": s.ends_at.isoformat(),
        "source": s.source,
    }


def _who(rt: Any, s: Any, schedule_id: str, at: datetime) -> dict[str, Any]:
    sched = oncall.get_schedule(rt.config, schedule_id)
    who = oncall.who(s, config=rt.config, schedule_id=schedule_id, at=at)
    person = rt.config.person(who.person) if who.person else None
    return {
        "schedule": sched.id,
        "name": sched.name or sched.id,
        "timezone": sched.timezone,
        "at": at.isoformat(),
        "person": who.person,
        "person_name": person.name if person else None,
        "source": who.source,
    }


@router.get("/oncall")
def oncall_all(rt: RuntimeDep, _p: Viewer, at: str | None = None) -> dict[str, Any]:
    """Who is on call now (or at `at`) on every schedule."""
    when = parse_at(at, rt.now())
    with rt.db.read() as s:
        return {"schedules": [_who(rt, s, sc.id, when) for sc in rt.config.schedules]}


@router.get("/oncall/{schedule}.ics")
def oncall_ics(
    schedule: str,
    rt: RuntimeDep,
    _p: Viewer,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 60,
    start: str | None = None,
) -> Response:
    """The schedule's shifts as an iCalendar file (from `start`, default now)."""
    begin = parse_at(start, rt.now(), field="start")
    return _ics_response(rt, schedule, begin, days)


ICS_LINK_TTL = timedelta(days=365)
public("GET", "/ics/{token}")
public_router = APIRouter(tags=["oncall"])


@router.post("/oncall/{schedule}/ics-link")
def oncall_ics_link(schedule: str, rt: RuntimeDep, principal: Viewer) -> dict[str, Any]:
    """A signed subscription URL for calendar apps, which cannot send a bearer token."""
    sched = oncall.get_schedule(rt.config, schedule)
    exp = rt.now() + ICS_LINK_TTL
    token = sign(
        {"s": sched.id, "by": principal.name, "exp": int(exp.timestamp())},
        key=rt.settings.secret_key,
        purpose="ics",
    )
    return {"url": f"{public_url(rt)}/ics/{token}", "expires_at": exp.isoformat()}


@public_router.get("/ics/{token}")
def oncall_ics_public(token: str, rt: RuntimeDep) -> Response:
    """The schedule named by a signed link as iCalendar; no login (read-only, expiring)."""
    if len(token) > 2048:
        raise Unauthenticated("the link is malformed")
    payload = unsign(token, key=rt.settings.secret_key, purpose="ics", now=rt.now())
    schedule = payload.get("s")
    if not isinstance(schedule, str):
        raise Unauthenticated("the link is malformed")
    return _ics_response(rt, schedule, rt.now(), 60)


def _ics_response(rt: Any, schedule: str, begin: datetime, days: int) -> Response:
    sched = oncall.get_schedule(rt.config, schedule)
    with rt.db.read() as s:
        shifts = oncall.upcoming(s, config=rt.config, schedule_id=schedule, start=begin, days=days)
    body = ics.render(rt.config, sched, shifts, now=rt.now())
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{sched.id}.ics"'},
    )


@router.get("/oncall/{schedule}")
def oncall_one(
    schedule: str,
    rt: RuntimeDep,
    _p: Viewer,
    at: str | None = None,
    days: Annotated[float, Query(ge=0, le=MAX_DAYS)] = 7,
) -> dict[str, Any]:
    """Who is on call at `at` (default now), and the shifts of the next `days` days."""
    when = parse_at(at, rt.now())
    with rt.db.read() as s:
        out = _who(rt, s, schedule, when)
        shifts = (
            oncall.upcoming(s, config=rt.config, schedule_id=schedule, start=when, days=days)
            if days
            else []
        )
        out["shifts"] = [_shift(rt, x) for x in shifts]
        out["overrides"] = [
            oncall.override_dict(o)
            for o in oncall.list_overrides(s, schedule_id=schedule, now=rt.now())
        ]
    return out


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    person: str = Field(max_length=100)
    from_: str = Field(alias="from", max_length=60)
    to: str = Field(max_length=60)
    reason: str = Field("", max_length=2000)


@router.get("/oncall/{schedule}/overrides")
def overrides_list(schedule: str, rt: RuntimeDep, _p: Viewer) -> dict[str, Any]:
    oncall.get_schedule(rt.config, schedule)
    with rt.db.read() as s:
        rows = oncall.list_overrides(s, schedule_id=schedule, now=rt.now())
        return {"overrides": [oncall.override_dict(r) for r in rows]}


@router.post("/oncall/{schedule}/overrides", status_code=201)
def overrides_add(
    schedule: str, body: OverrideIn, rt: RuntimeDep, principal: Responder
) -> dict[str, Any]:
    """Put someone on call for a window (recorded in the audit log)."""
    now = rt.now()
    starts = parse_at(body.from_, now, field="from")
    ends = parse_at(body.to, now, field="to")
    with rt.db.transaction() as s:
        row = oncall.add_override(
            s,
            config=rt.config,
            schedule_id=schedule,
            person=body.person,
            starts_at=starts,
            ends_at=ends,
            actor=principal.name,
            now=now,
            reason=body.reason,
        )
        return oncall.override_dict(row)


@router.delete("/oncall/{schedule}/overrides/{override_id}")
def overrides_delete(
    schedule: str, override_id: Id, rt: RuntimeDep, principal: Responder
) -> dict[str, Any]:
    with rt.db.transaction() as s:
        row = oncall.cancel_override(
            s, schedule_id=schedule, override_id=override_id, actor=principal.name, now=rt.now()
        )
        return {"cancelled": row.id}


@router.get("/incidents/{number}/deliveries")
def incident_deliveries(number: Id, rt: RuntimeDep, _p: Viewer) -> dict[str, Any]:
    """The delivery log of one incident: who, how, state, attempts, last error."""
    with rt.db.read() as s:
        incident = incidents.get_or_raise(s, number=number)
        rows = notify.for_incident(s, incident_id=incident.id)
        return {"incident": number, "deliveries": [notify.as_dict(d) for d in rows]}


@router.get("/deliveries")
def deliveries(
    rt: RuntimeDep,
    _p: Viewer,
    state: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Recent deliveries, e.g. `?state=dead` for the ones that need a person."""
    if state is not None and state not in {x.value for x in notify.State}:
        raise InvalidInput(f"unknown state {state!r}", field="state")
    with rt.db.read() as s:
        rows = notify.recent(s, state=state, limit=limit)
        return {"deliveries": [notify.as_dict(d) for d in rows]}


@router.post("/deliveries/{delivery_id}/retry")
def delivery_retry(delivery_id: Id, rt: RuntimeDep, principal: Responder) -> dict[str, Any]:
    """Send a dead (or failed/cancelled) delivery again through the queue."""
    with rt.db.transaction() as s:
        d = notify.get_or_raise(s, delivery_id)
        notify.requeue(s, d, now=rt.now(), actor=principal.name)
        return notify.as_dict(d)


@router.post("/people/{person}/test-page")
def test_page(person: str, rt: RuntimeDep, principal: Responder) -> dict[str, Any]:
    """Send a test page through each of a person's contact methods now; one result each."""
    p = rt.config.person(person)
    if p is None:
        raise NotFound(f"unknown person {person!r}", field="person")
    targets = notify.contact_targets(rt.config, person)
    if not targets:
        raise InvalidInput(f"{person} has no usable contact method", field="person")
    now = rt.now()
    run = int(now.timestamp() * 1000)
    results: list[dict[str, Any]] = []
    for target in targets:
        channel = rt.config.channels[target.channel]
        subject, text = message.test_page(
            person_name=p.name, channel=target.channel, public_url=public_url(rt)
        )
        with rt.db.transaction() as s:
            row = notify.create_row(
                s,
                incident_id=None,
                purpose=notify.Purpose.TEST,
                level=0,
                round_=run,
                target=target,
                subject=subject,
                body=text,
                now=now,
                data={"requested_by": principal.name},
            )
            assert row is not None  # the round is unique per request
            row.state, row.attempts, row_id = notify.State.SENDING, 1, row.id
            key = row.idempotency_key
        msg = channels.Message(subject, text, key, target.address, {"event": "test"})
        try:
            answer = channels.send(
                channel, msg, env=rt.env, timeout=channel.retry.timeout.total_seconds()
            )
            state, error = notify.State.SENT, None
        except channels.SendError as err:
            answer, state, error = "", notify.State.DEAD, rt.redactor.redact(err.reason)
        with rt.db.transaction() as s:
            row2 = notify.get_or_raise(s, row_id)
            row2.state, row2.last_error, row2.updated_at = state, error, rt.now()
            if state == notify.State.SENT:
                row2.sent_at = rt.now()
        results.append(
            {
                "delivery_id": row_id,
                "channel": target.channel,
                "type": channel.type,
                "state": state,
                "result": answer,
                "error": error,
            }
        )
    return {
        "person": person,
        "deliveries": results,
        "ok": all(r["state"] == "sent" for r in results),
    }


# ------------------------------------------------------------------ watchdog
def _admin_emails(rt: Any) -> list[str]:
    with rt.db.read() as s:
        rows = s.scalars(
            select(User.email).where(
                User.role == Role.ADMIN, User.disabled.is_(False), User.email.is_not(None)
            )
        ).all()
        return [str(e) for e in rows if e]


class WakeWorker:
    """After a write request, wake the embedded worker so a new page does not wait a poll."""

    def __init__(self, app: ASGIApp, *, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope.get("method") not in ("GET", "HEAD", "OPTIONS"):
            worker = getattr(self.owner.state, "worker", None)
            if worker is not None:
                worker.wake()


def install(app: FastAPI) -> None:
    """Mount the public ICS route; run the watchdog for the lifetime of the app (wraps the existing lifespan), and
    wake the embedded worker after writes (lower page latency in embedded mode)."""
    app.include_router(public_router)
    app.add_middleware(WakeWorker, owner=app)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        rt = a.state.runtime
        dog = Watchdog(rt, admin_emails=lambda: _admin_emails(rt))
        a.state.watchdog = dog
        async with inner(a) as state:
            dog.start()
            try:
                yield state
            finally:
                dog.stop()  # before the inner lifespan disposes the database

    app.router.lifespan_context = lifespan
