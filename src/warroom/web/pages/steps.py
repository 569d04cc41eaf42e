"""Run one runbook step from the incident page, streaming its output to every open page.

The step runs in a background thread of this process through the runbook
executor (which records the run and step rows); output chunks go to the
live broker (SSE), and the finished step lands on the incident timeline so
every replica's viewers see the result. Mutating steps need the commander
role, an explicit confirmation and, where `policies.mutating_steps` says
`two-person` for the incident's severity, a second commander's approval.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from warroom.auth.service import Principal
from warroom.core.errors import InvalidInput, RateLimited
from warroom.core.logging import get_logger
from warroom.incidents import approvals, timeline
from warroom.incidents import service as incidents
from warroom.incidents.models import Incident, Status
from warroom.jobs.runtime import Runtime
from warroom.runbooks import executor
from warroom.runbooks.model import Runbook, Step, StepKind
from warroom.runbooks.models import StepRun
from warroom.store import audit
from warroom.web.deps import Responder, RuntimeDep
from warroom.web.pages import common, runbooks
from warroom.web.pages.common import CsrfForm, field
from warroom.web.pages.live import broker

log = get_logger("warroom.web.steps")
router = APIRouter()
MAX_CONCURRENT = 4  # web-started steps per process; more waits for a free slot
TIMELINE_OUTPUT = 8_000  # characters of output kept on the timeline (the step row keeps more)
STEP_FINISHED = "runbook.step"
_slots = threading.BoundedSemaphore(MAX_CONCURRENT)


def _check_allowed(
    s: Any,
    rt: Runtime,
    who: Principal,
    incident: Incident,
    rb: Runbook,
    step: Step,
    confirmed: bool,
) -> bool:
    """True to run now; False when this click only recorded a request for a second approver.

    Raises PermissionDenied / InvalidInput with what is missing.
    """
    if incident.status == Status.RESOLVED:
        raise InvalidInput(f"incident {incident.number} is resolved", hint="reopen it first")
    if not step.mutates:
        return True
    approvals.require_role(rt.config, incident, who, step.id)
    if not confirmed:
        raise InvalidInput(
            f"step {step.id} changes things: tick the confirmation box to run it", field="confirm"
        )
    waiting = approvals.approved(
        s,
        config=rt.config,
        incident=incident,
        who=who,
        runbook_id=rb.id,
        step_ids=[step.id],
        clock=rt.clock,
    )
    return not waiting


def _run_in_background(
    rt: Runtime, rb: Runbook, step: Step, incident: Incident, who: Principal
) -> None:
    incident_id, number = incident.id, incident.number

    def on_event(st: Step, kind: str, text: str) -> None:
        if kind == "start":
            broker.publish(
                incident_id, {"step": st.id, "reset": True, "chunk": f"$ {text.strip()}\n"}
            )
        elif kind == "output":
            broker.publish(incident_id, {"step": st.id, "chunk": text})
        elif kind in ("done", "refused", "skipped"):
            broker.publish(incident_id, {"step": st.id, "done": True, "outcome": text})

    def on_step(st: Step, row: StepRun) -> None:
        with rt.db.transaction() as s:
            inc = s.get(Incident, incident_id)
            if inc is None:
                return
            output = row.output
            if len(output) > TIMELINE_OUTPUT:
                output = output[:TIMELINE_OUTPUT] + "\n… (full output in the step run record)"
            timeline.add(
                s,
                inc,
                kind=STEP_FINISHED,
                actor=who.name,
                at=rt.now(),
                text=f"Step {st.id} of {rb.id}: {row.outcome}"
                + (f" (exit {row.exit_status})" if row.exit_status is not None else "")
                + f" in {row.duration_ms} ms",
                data={
                    "runbook": rb.id,
                    "step": st.id,
                    "step_run": row.id,
                    "outcome": row.outcome,
                    "output": output,
                },
                redactor=rt.redactor,
            )

    def work() -> None:
        try:
            executor.execute(
                rt,
                rb,
                params={},
                actor=who.name,
                trigger="manual",
                incident_id=incident_id,
                select=[step.id],
                confirmed={step.id},
                on_event=on_event,
                on_step=on_step,
            )
        except Exception as exc:  # the thread's boundary: report, never die silently
            log.warning("web_step_failed", incident=number, step=step.id, error=type(exc).__name__)
            message = exc.message if hasattr(exc, "message") else "the step could not run"
            broker.publish(incident_id, {"step": step.id, "chunk": f"error: {message}\n"})
            broker.publish(incident_id, {"step": step.id, "done": True, "outcome": "failed"})
        finally:
            _slots.release()

    threading.Thread(target=work, name=f"step-{number}-{step.id}", daemon=True).start()


@router.post("/incidents/{number}/steps")
def run_step(
    request: Request, number: int, rt: RuntimeDep, who: Responder, form: CsrfForm
) -> Response:
    runbook_id = field(form, "runbook", limit=100)
    step_id = field(form, "step", limit=200)
    confirmed = form.get("confirm") == "yes"
    rb = runbooks.get(rt, runbook_id)
    step = rb.step(step_id)
    if step is None:
        raise InvalidInput(f"runbook {rb.id} has no step {step_id!r}", field="step")
    wants_json = "application/json" in request.headers.get("accept", "")
    # take a slot before recording "started", so a busy server refuses without a trace
    slot = step.kind is not StepKind.MANUAL and _slots.acquire(blocking=False)
    if step.kind is not StepKind.MANUAL and not slot:
        raise RateLimited(
            "too many steps are running on this server; try again shortly", retry_after=5
        )
    try:
        state, incident = _record(rt, who, number, rb, step, confirmed=confirmed)
    except BaseException:
        if slot:
            _slots.release()
        raise
    if state == "started":
        _run_in_background(rt, rb, step, incident, who)  # releases the slot when done
    elif slot:
        _slots.release()
    if wants_json:
        return JSONResponse({"state": state, "step": step.id}, status_code=202)
    return common.see_other(f"/incidents/{number}#step-{step.id}")


def _record(
    rt: Runtime, who: Principal, number: int, rb: Runbook, step: Step, *, confirmed: bool
) -> tuple[str, Incident]:
    """Check and record the request in one transaction; returns (state, detached incident)."""
    now = rt.now()
    with rt.db.transaction() as s:
        incident = incidents.get_or_raise(s, number=number)
        if step.kind is StepKind.MANUAL:
            timeline.add(
                s, incident, kind=STEP_FINISHED, actor=who.name, at=now,
                text=f"Ticked: {step.code.strip()[:500]}",
                data={"runbook": rb.id, "step": step.id, "outcome": "ticked"},
                redactor=rt.redactor,
            )  # fmt: skip
            state = "ticked"
        else:
            run_now = _check_allowed(s, rt, who, incident, rb, step, confirmed)
            state = "started" if run_now else "awaiting_approval"
        audit.record(
            s, at=now, actor=who.name, action="runbook.step.run",
            target=f"incident:{number}",
            detail={"runbook": rb.id, "step": step.id, "state": state, "via": "web"},
        )  # fmt: skip
        s.expunge(incident)
    return state, incident
