"""Runbooks over HTTP: the catalog as JSON, and runs attached to an incident.

POST /api/v1/incidents/{n}/runs runs steps of a runbook and records them on
the incident's timeline. Responders may run non-mutating steps; a mutating
step needs the commander role and its id in `confirm`, otherwise the request
is refused before anything runs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from warroom.alerts.models import Alert
from warroom.core.errors import InvalidInput, NotFound
from warroom.incidents import approvals, timeline
from warroom.incidents import service as incidents
from warroom.incidents.models import Incident
from warroom.jobs.runtime import Runtime
from warroom.runbooks import executor
from warroom.runbooks.loader import load_folder
from warroom.runbooks.model import Catalog, Phase, Runbook, Step, StepKind
from warroom.runbooks.models import StepRun
from warroom.web.deps import Responder, RuntimeDep, Viewer

router = APIRouter(prefix="/api/v1", tags=["runbooks"])

Name = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")
]
ParamValue = str | int | float | bool


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    runbook: Name
    params: dict[Annotated[str, StringConstraints(max_length=50)], ParamValue] = Field(
        default_factory=dict, max_length=50
    )
    steps: list[Name] | None = Field(None, max_length=200, description="step ids (default: all)")
    phases: list[Phase] | None = Field(None, max_length=10)
    confirm: list[Name] = Field(
        default_factory=list, max_length=200, description="mutating step ids you confirm"
    )
    ticked: list[Name] = Field(
        default_factory=list, max_length=200, description="manual steps you have done"
    )


def _catalog(rt: Runtime) -> Catalog:
    return load_folder(rt.settings.runbooks_path)


def _get(rt: Runtime, runbook_id: str) -> Runbook:
    rb = _catalog(rt).get(runbook_id)
    if rb is None:
        raise NotFound(f"no runbook {runbook_id!r}", field="runbook")
    return rb


@router.get("/runbooks")
def list_runbooks(rt: RuntimeDep, _who: Viewer) -> dict[str, Any]:
    """Every runbook's front matter summary, and files that failed to load."""
    catalog = _catalog(rt)
    return {
        "runbooks": [rb.summary() for rb in catalog],
        "problems": [p.as_dict() for p in catalog.problems],
    }


@router.get("/runbooks/{runbook_id}")
def get_runbook(runbook_id: str, rt: RuntimeDep, _who: Viewer) -> dict[str, Any]:
    """One runbook: front matter, parameters, sections, steps and its Markdown body."""
    rb = _get(rt, runbook_id)
    data = rb.as_dict()
    data["problems"] = [p.as_dict() for p in rb.problems]
    return data


def _step_json(row: StepRun) -> dict[str, Any]:
    return {
        "id": row.step_id,
        "phase": row.phase,
        "kind": row.kind,
        "outcome": row.outcome,
        "exit_status": row.exit_status,
        "duration_ms": row.duration_ms,
        "rendered": row.rendered,
        "output": row.output,
        "truncated": row.truncated,
        "actor": row.actor,
    }


def _post(
    rt: Runtime, incident_id: int, actor: str, kind: str, text: str, data: dict[str, Any]
) -> None:
    with rt.db.transaction() as s:
        incident = s.get(Incident, incident_id)
        if incident is None:  # deleted while the run went on
            return
        timeline.add(
            s,
            incident,
            kind=kind,
            actor=actor,
            at=rt.now(),
            text=text,
            data=data,
            redactor=rt.redactor,
        )


@router.post("/incidents/{number}/runs")
def run_for_incident(
    number: int, body: RunRequest, rt: RuntimeDep, who: Responder
) -> dict[str, Any]:
    """Run steps of a runbook for an incident; each result lands on its timeline."""
    with rt.db.read() as s:
        incident_id = incidents.get_or_raise(s, number=number).id
        # parameters not given fall back to the labels of the incident's first alert
        alert = s.scalars(
            select(Alert).where(Alert.incident_id == incident_id).order_by(Alert.id).limit(1)
        ).first()
        labels = {str(k): str(v) for k, v in (alert.labels if alert else {}).items()}
    rb = _get(rt, body.runbook)
    known = {s.id for s in rb.steps}
    for ref in [*(body.steps or []), *body.confirm, *body.ticked]:
        if ref not in known:
            raise InvalidInput(f"runbook {rb.id} has no step {ref!r}", field="steps")
    wanted_steps = set(body.steps or [])
    wanted_phases = {p.value for p in body.phases or []}

    def chosen(step: Step) -> bool:
        if not wanted_steps and not wanted_phases:
            return True
        return step.id in wanted_steps or step.phase.value in wanted_phases

    selected = [s for s in rb.steps if chosen(s)]
    mutating = [s.id for s in selected if s.mutates]
    unconfirmed = [sid for sid in mutating if sid not in body.confirm]
    if unconfirmed:
        raise InvalidInput(
            f"step {unconfirmed[0]} changes things (mutates); list it in 'confirm' to run it",
            field="confirm",
        )
    if mutating:
        with rt.db.transaction() as s:
            incident = incidents.get_or_raise(s, number=number)
            waiting = approvals.approved(
                s,
                config=rt.config,
                incident=incident,
                who=who,
                runbook_id=rb.id,
                step_ids=mutating,
                clock=rt.clock,
            )
        if waiting:
            # two-person rule: recorded as a request; a second commander runs it
            return {
                "state": "awaiting_approval",
                "waiting_for_second_commander": waiting,
                "run": None,
            }
    manual = {s.id for s in selected if s.kind is StepKind.MANUAL}
    confirmed = set(mutating) | (set(body.ticked) & manual)
    _post(
        rt,
        incident_id,
        who.name,
        "runbook.started",
        f"runbook {rb.id} started",
        {"runbook": rb.id, "params": dict(body.params)},
    )
    rows: list[StepRun] = []

    def on_step(step: Step, row: StepRun) -> None:
        rows.append(row)
        status = f" (exit {row.exit_status})" if row.exit_status is not None else ""
        _post(
            rt,
            incident_id,
            who.name,
            "runbook.step",
            f"{rb.id} · {step.id}: {row.outcome}{status}",
            {
                "runbook": rb.id,
                "run_id": row.run_id,
                "step": step.id,
                "kind": row.kind,
                "outcome": row.outcome,
                "exit_status": row.exit_status,
                "duration_ms": row.duration_ms,
                "output": row.output[-2000:],
            },
        )

    run = executor.execute(
        rt,
        rb,
        params=body.params,
        actor=who.name,
        trigger="api",
        incident_id=incident_id,
        labels=labels,
        select=chosen,
        confirmed=confirmed,
        on_step=on_step,
    )
    _post(
        rt,
        incident_id,
        who.name,
        "runbook.finished",
        f"runbook {rb.id} {run.outcome}",
        {"runbook": rb.id, "run_id": run.id, "outcome": run.outcome},
    )
    return {
        "state": "finished",
        "run": {
            "id": run.id,
            "runbook": run.runbook_id,
            "file_hash": run.file_hash,
            "actor": run.actor,
            "params": run.params,
            "outcome": run.outcome,
            "incident": number,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        },
        "steps": [_step_json(r) for r in rows],
    }
