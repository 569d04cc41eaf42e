"""Who may run a mutating runbook step on an incident: `policies.mutating_steps`.

`responder` lets any responder run it, `commander` needs the commander role,
`two-person` needs a second commander: the first request is recorded on the
timeline, and the step runs when a *different* commander asks for the same
step within APPROVAL_WINDOW. Used by the web page and the REST API alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from warroom.auth.models import Role
from warroom.auth.service import Principal
from warroom.config.schema import Config
from warroom.core.clock import Clock
from warroom.core.errors import PermissionDenied
from warroom.incidents import timeline
from warroom.incidents.models import Incident, TimelineEvent

APPROVAL_WINDOW = timedelta(minutes=15)
STEP_REQUESTED = "runbook.step_requested"


def policy_for(config: Config, severity: str) -> str:
    rules = config.policies.mutating_steps
    return str(rules.get(severity) or rules.get("default") or "commander")


def require_role(config: Config, incident: Incident, who: Principal, step_id: str) -> str:
    """The policy for this incident; raises PermissionDenied when the role is too low."""
    policy = policy_for(config, incident.severity)
    if policy != "responder" and not who.allows(Role.COMMANDER):
        raise PermissionDenied(f"step {step_id} changes things and needs the commander role")
    return policy


def _requesters(
    s: Session, incident: Incident, runbook_id: str, step_id: str, *, clock: Clock
) -> set[str]:
    since = clock.now() - APPROVAL_WINDOW
    rows = s.scalars(
        select(TimelineEvent).where(
            TimelineEvent.incident_id == incident.id,
            TimelineEvent.kind == STEP_REQUESTED,
            TimelineEvent.at >= since,
        )
    )
    return {
        e.actor
        for e in rows
        if (e.data or {}).get("runbook") == runbook_id and (e.data or {}).get("step") == step_id
    }


def approved(
    s: Session,
    *,
    config: Config,
    incident: Incident,
    who: Principal,
    runbook_id: str,
    step_ids: Sequence[str],
    clock: Clock,
) -> list[str]:
    """Check every mutating step; return the ones still waiting for a second commander.

    A waiting step gets a request event on the timeline (in the caller's
    transaction). Raises PermissionDenied for a too-low role.
    """
    waiting: list[str] = []
    for step_id in step_ids:
        policy = require_role(config, incident, who, step_id)
        if policy != "two-person":
            continue
        others = _requesters(s, incident, runbook_id, step_id, clock=clock) - {who.name}
        if others:
            continue
        waiting.append(step_id)
        timeline.add(
            s,
            incident,
            kind=STEP_REQUESTED,
            actor=who.name,
            at=clock.now(),
            text=f"{who.name} wants to run mutating step {step_id} of {runbook_id}; "
            "a second commander must approve it within 15 minutes",
            data={"runbook": runbook_id, "step": step_id},
        )
    return waiting
