"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import func, select

from warroom.core.errors import Unavailable
from warroom.incidents import service as incidents
from warroom.jobs.models import Job, JobState
from warroom.jobs.worker import latest_heartbeat
from warroom.postmortems.reports import metric_lines
from warroom.store import migrate
from warroom.web.deps import RuntimeDep, public

router = APIRouter(tags=["health"])
WORKER_STALE_AFTER = timedelta(seconds=30)

public("GET", "/healthz")
public("GET", "/readyz")
public("GET", "/metrics")


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(rt: RuntimeDep) -> JSONResponse:
    """Database reachable, migrations current, a worker heartbeat recent."""
    checks: dict[str, str] = {}
    ok = True
    try:
        rt.db.ping()
        checks["database"] = "ok"
        if migrate.is_current(rt.db):
            checks["migrations"] = "ok"
        else:
            checks["migrations"] = "pending: run `warroom db upgrade`"
            ok = False
        hb = latest_heartbeat(rt)
        if hb is None:
            checks["worker"] = "no worker has checked in"
            ok = False
        elif rt.now() - hb.last_seen > WORKER_STALE_AFTER:
            checks["worker"] = (
                f"stalled: last heartbeat {hb.last_seen.isoformat()} from {hb.worker_id}"
            )
            ok = False
        else:
            checks["worker"] = "ok"
    except Unavailable as exc:
        checks["database"] = exc.message
        ok = False
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(rt: RuntimeDep) -> str:
    """Prometheus text format: open incidents by severity, job queue depth and age."""
    lines: list[str] = []
    now = rt.now()
    with rt.db.read() as s:
        open_by_sev = incidents.count_open(s)
        lines.append("# HELP warroom_open_incidents Open incidents by severity.")
        lines.append("# TYPE warroom_open_incidents gauge")
        for sev in ("P0", "P1", "P2", "P3"):
            lines.append(f'warroom_open_incidents{{severity="{sev}"}} {open_by_sev.get(sev, 0)}')
        rows = s.execute(select(Job.state, func.count()).group_by(Job.state)).all()
        lines.append("# HELP warroom_jobs Jobs by state.")
        lines.append("# TYPE warroom_jobs gauge")
        counts = {state: int(n) for state, n in rows}
        for state in JobState:
            lines.append(f'warroom_jobs{{state="{state.value}"}} {counts.get(state.value, 0)}')
        oldest = s.scalar(
            select(func.min(Job.run_at)).where(Job.state == JobState.PENDING, Job.run_at <= now)
        )
        age = (now - oldest).total_seconds() if oldest else 0.0
        lines.append("# HELP warroom_job_queue_oldest_due_seconds Age of the oldest due job.")
        lines.append("# TYPE warroom_job_queue_oldest_due_seconds gauge")
        lines.append(f"warroom_job_queue_oldest_due_seconds {age:.3f}")
        lines.extend(metric_lines(s, today=now.date()))  # acks, breaches, deliveries, actions
    extra = rt.extras.get("metrics_collectors", [])
    for collect in extra:
        lines.extend(collect(rt))
    return "\n".join(lines) + "\n"
