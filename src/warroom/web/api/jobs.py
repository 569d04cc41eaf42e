"""Job engine API (admin): list jobs by state (dead ones first of all) and retry a dead job."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import func, select

from warroom.core.errors import Conflict, InvalidInput, NotFound
from warroom.incidents import views
from warroom.incidents.models import Incident
from warroom.jobs import queue
from warroom.jobs.models import Job, JobState
from warroom.store import audit
from warroom.web.deps import Admin, JsonBody, RuntimeDep

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


def job_dict(job: Job) -> dict[str, Any]:
    """The stable JSON shape of a job (payload left out: it may name people and addresses)."""
    return {
        "id": job.id,
        "kind": job.kind,
        "version": job.version,
        "state": job.state,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "run_at": views.iso(job.run_at),
        "incident_id": job.incident_id,
        "last_error": job.last_error,
        "created_at": views.iso(job.created_at),
        "updated_at": views.iso(job.updated_at),
        "finished_at": views.iso(job.finished_at),
    }


@router.get("")
def list_jobs(
    rt: RuntimeDep,
    who: Admin,
    state: Annotated[
        str, Query(max_length=16, description="pending|running|done|dead|cancelled")
    ] = "dead",
    kind: Annotated[str | None, Query(max_length=64)] = None,
    incident: Annotated[int | None, Query(ge=1, le=2_000_000_000, description="number")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Jobs in one state, newest first (default: dead jobs, the ones needing a person)."""
    if state not in {s.value for s in JobState}:
        raise InvalidInput(
            f"unknown job state {state!r}",
            field="state",
            hint="use " + ", ".join(s.value for s in JobState),
        )
    stmt = select(Job).where(Job.state == state)
    if kind:
        stmt = stmt.where(Job.kind == kind)
    if incident is not None:
        stmt = stmt.where(
            Job.incident_id.in_(select(Incident.id).where(Incident.number == incident))
        )
    with rt.db.read() as s:
        total = int(s.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
        rows = s.scalars(stmt.order_by(Job.id.desc()).limit(limit).offset(offset)).all()
        items = [job_dict(j) for j in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post("/{job_id}/retry")
def retry_job(
    rt: RuntimeDep,
    who: Admin,
    _json: Annotated[None, JsonBody],
    job_id: Annotated[int, Path(ge=1, le=2**62)],
) -> dict[str, Any]:
    """Send a dead job round again now, with its attempts reset."""
    now = rt.now()
    with rt.db.transaction() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist", field="job_id")
        if job.state != JobState.DEAD:
            raise Conflict(f"job {job_id} is {job.state}, not dead", field="job_id")
        queue.requeue(s, job_id, now=now)
        audit.record(
            s,
            at=now,
            actor=who.name,
            action="job.retry",
            target=f"job:{job_id}",
            detail={"kind": job.kind},
            redactor=rt.redactor,
        )
        s.refresh(job)
        return job_dict(job)
