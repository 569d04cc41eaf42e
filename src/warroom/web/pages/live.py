"""Live updates over Server-Sent Events: new timeline events and running step output.

Timeline events come from the database (so every replica sees every event);
step output chunks come from the in-process broker of the replica running the
step, and the finished step lands on the timeline for everyone. A stream ends
after a few minutes and the browser reconnects with `Last-Event-ID`, so no
event is missed and no connection is held forever.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from warroom.core.clock import as_utc
from warroom.incidents import service as incidents
from warroom.incidents import timeline
from warroom.incidents.models import Incident, TimelineEvent
from warroom.jobs.runtime import Runtime
from warroom.web.deps import RuntimeDep, Viewer

router = APIRouter()
POLL_SECONDS = 0.5
STREAM_SECONDS = 300.0
HEARTBEAT_SECONDS = 15.0
MAX_QUEUE = 2000


class Subscription:
    def __init__(self, incident_id: int) -> None:
        self.incident_id = incident_id
        self._items: deque[dict[str, Any]] = deque(maxlen=MAX_QUEUE)
        self._lock = threading.Lock()

    def put(self, item: dict[str, Any]) -> None:
        with self._lock:
            self._items.append(item)

    def drain(self) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
        return items


class Broker:
    """Fan-out of live step output to the SSE streams of one process (thread-safe)."""

    def __init__(self) -> None:
        self._subs: dict[int, set[Subscription]] = {}
        self._lock = threading.Lock()

    def subscribe(self, incident_id: int) -> Subscription:
        sub = Subscription(incident_id)
        with self._lock:
            self._subs.setdefault(incident_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.incident_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.incident_id]

    def publish(self, incident_id: int, item: dict[str, Any]) -> None:
        with self._lock:
            subs = list(self._subs.get(incident_id, ()))
        for sub in subs:
            sub.put(item)


broker = Broker()


def incident_state(incident: Incident) -> dict[str, Any]:
    """Header fields the page refreshes when an event arrives."""
    return {
        "status": incident.status,
        "severity": incident.severity,
        "acknowledged_by": incident.acknowledged_by or "",
        "acknowledged": incident.acknowledged_at is not None,
        "commander": incident.commander or "",
        "communications": incident.communications or "",
        "scribe": incident.scribe or "",
        "respond_by": as_utc(incident.respond_by).isoformat() if incident.respond_by else "",
    }


def event_dict(ev: TimelineEvent) -> dict[str, Any]:
    data = ev.data or {}
    out: dict[str, Any] = {
        "id": ev.id,
        "at": as_utc(ev.at).isoformat(),
        "at_text": as_utc(ev.at).strftime("%H:%M:%S"),
        "kind": ev.kind,
        "actor": ev.actor,
        "text": ev.text,
        "public": ev.public,
    }
    output = data.get("output")
    if isinstance(output, str):
        out["output"] = output
    return out


def _sse(event: str, data: dict[str, Any], event_id: int | None = None) -> str:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    # json.dumps never emits a raw newline, so one data line is always enough
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


def _fetch(
    rt: Runtime, number: int, after: int
) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
    with rt.db.read() as s:
        incident = incidents.get_or_raise(s, number=number)
        rows = [event_dict(e) for e in timeline.events(s, incident.id, after_id=after, limit=200)]
        return incident.id, rows, incident_state(incident)


@router.get("/incidents/{number}/events")
async def events(
    request: Request, number: int, rt: RuntimeDep, _viewer: Viewer, after: int = 0
) -> StreamingResponse:
    last_id = request.headers.get("last-event-id", "")
    cursor = int(last_id) if last_id.isdigit() else max(0, after)
    incident_id, first, state = await run_in_threadpool(_fetch, rt, number, cursor)

    async def stream() -> AsyncIterator[str]:
        nonlocal cursor, first
        sub = broker.subscribe(incident_id)
        started = last_beat = time.monotonic()
        try:
            yield "retry: 2000\n\n"
            rows, snapshot = first, state
            while True:
                for row in rows:
                    cursor = max(cursor, int(row["id"]))
                    yield _sse("timeline", {**row, "incident": snapshot}, row["id"])
                for item in sub.drain():
                    yield _sse("output", item)
                now = time.monotonic()
                if now - last_beat > HEARTBEAT_SECONDS:
                    last_beat = now
                    yield ": keep-alive\n\n"
                if now - started > STREAM_SECONDS or await request.is_disconnected():
                    return
                await asyncio.sleep(POLL_SECONDS)
                _, rows, snapshot = await run_in_threadpool(_fetch, rt, number, cursor)
        finally:
            broker.unsubscribe(sub)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
