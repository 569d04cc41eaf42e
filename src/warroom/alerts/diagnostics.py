"""Automatic diagnostics: run a runbook's `auto` steps for an alert, output onto the incident timeline.

Guards, in order: the alert still fires, the incident is open, the same
diagnostics did not just run for this incident, and the caps
(`policies.auto_diagnostics`) allow it now. A `mutates` step never runs
here: the executor drops it for trigger="auto", and we select `auto` steps only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from warroom.alerts.catalog import catalog
from warroom.alerts.models import Alert
from warroom.alerts.sources import AlertStatus
from warroom.core.errors import InvalidInput
from warroom.core.logging import get_logger
from warroom.incidents import timeline
from warroom.incidents.models import Incident, Status
from warroom.jobs.models import Job
from warroom.jobs.runtime import Runtime
from warroom.jobs.worker import RetryLater
from warroom.runbooks import executor
from warroom.runbooks import params as prm
from warroom.runbooks.model import Step
from warroom.runbooks.models import RunbookRun, StepRun

log = get_logger("warroom.alerts.diagnostics")

ACTOR = "auto-diagnostics"
EV_STEP = "diagnostics.step"
EV_SKIPPED = "diagnostics.skipped"
WINDOW = timedelta(minutes=1)
STALE_RUN = timedelta(minutes=15)  # a "running" row older than this belongs to a dead worker
SAME_PARAMS_WINDOW = timedelta(minutes=10)
MAX_TIMELINE_OUTPUT = 8000


def _note(rt: Runtime, incident_id: int, text: str, data: dict[str, Any]) -> None:
    with rt.db.transaction() as s:
        incident = s.get(Incident, incident_id)
        if incident is not None:
            timeline.add(
                s,
                incident,
                kind=EV_SKIPPED,
                actor=ACTOR,
                at=rt.now(),
                text=text,
                data=data,
                redactor=rt.redactor,
            )


def run(rt: Runtime, job: Job) -> None:
    """Job handler for `alerts.diagnostics`. Raises RetryLater when a cap says 'not now'."""
    alert_id = int(job.payload["alert_id"])
    incident_id = int(job.payload["incident_id"])
    runbook_id = str(job.payload["runbook"])
    now = rt.now()
    policy = rt.config.policies.auto_diagnostics
    with rt.db.read() as s:
        alert = s.get(Alert, alert_id)
        incident = s.get(Incident, incident_id)
        if alert is None or incident is None:
            return
        if alert.status == AlertStatus.RESOLVED:
            log.info("diagnostics_skipped", alert=alert_id, reason="alert_resolved")
            return
        if incident.status == Status.RESOLVED:
            return
        labels = {str(k): str(v) for k, v in (alert.labels or {}).items()}
        rb = catalog(rt).get(runbook_id)
        if rb is None:
            _note(
                rt,
                incident_id,
                f"Runbook {runbook_id} not found: no automatic diagnostics",
                {"runbook": runbook_id},
            )
            return
        if not any(st.auto and not st.mutates for st in rb.steps):
            return
        try:
            values = prm.resolve(rb, {}, labels=labels)
        except InvalidInput as exc:
            _note(
                rt,
                incident_id,
                f"Diagnostics of {runbook_id} not started: {exc.message}",
                {"runbook": runbook_id, "field": exc.field},
            )
            return
        redacted = rt.redactor.redact_obj(dict(values))
        recent = s.scalars(
            select(RunbookRun.params).where(
                RunbookRun.runbook_id == runbook_id,
                RunbookRun.incident_id == incident_id,
                RunbookRun.trigger == "auto",
                RunbookRun.started_at >= now - SAME_PARAMS_WINDOW,
            )
        ).all()
        if any(p == redacted for p in recent):
            log.info("diagnostics_skipped", alert=alert_id, reason="already_ran")
            return
        running = (
            s.scalar(
                select(func.count())
                .select_from(RunbookRun)
                .where(
                    RunbookRun.trigger == "auto",
                    RunbookRun.outcome == executor.Outcome.RUNNING,
                    RunbookRun.started_at >= now - STALE_RUN,
                )
            )
            or 0
        )
        if running >= policy.max_concurrent:
            raise RetryLater("auto diagnostics at max_concurrent", delay=2.0)
        window = s.scalars(
            select(RunbookRun.started_at)
            .where(
                RunbookRun.runbook_id == runbook_id,
                RunbookRun.trigger == "auto",
                RunbookRun.started_at > now - WINDOW,
            )
            .order_by(RunbookRun.started_at)
        ).all()
        if len(window) >= policy.per_runbook_per_minute:
            wait = (window[0] + WINDOW - now).total_seconds()
            raise RetryLater("auto diagnostics per_runbook_per_minute", delay=max(1.0, wait))

    def on_step(step: Step, step_run: StepRun) -> None:
        output = step_run.output or ""
        if len(output) > MAX_TIMELINE_OUTPUT:
            output = output[:MAX_TIMELINE_OUTPUT] + "\n… (truncated; full output in the run record)"
        with rt.db.transaction() as ts:
            inc = ts.get(Incident, incident_id)
            if inc is None:
                return
            timeline.add(
                ts,
                inc,
                kind=EV_STEP,
                actor=ACTOR,
                at=rt.now(),
                text=f"{rb.id} · {step.title or step.id}: {step_run.outcome}\n{output}".rstrip(),
                data={
                    "runbook": rb.id,
                    "step": step.id,
                    "run_id": step_run.run_id,
                    "outcome": step_run.outcome,
                    "exit_status": step_run.exit_status,
                    "command": step_run.rendered,
                    "alert": alert_id,
                },
                redactor=rt.redactor,
            )

    try:
        executor.execute(
            rt,
            rb,
            params={},
            actor=ACTOR,
            trigger="auto",
            incident_id=incident_id,
            labels=labels,
            select=lambda st: st.auto and not st.mutates,
            on_step=on_step,
        )
    except InvalidInput as exc:
        _note(
            rt,
            incident_id,
            f"Diagnostics of {runbook_id} not started: {exc.message}",
            {"runbook": runbook_id},
        )
