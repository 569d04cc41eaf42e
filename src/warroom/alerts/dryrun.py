"""`warroom alert route FILE`: where a payload's alerts would go, without changing anything."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from warroom.alerts import payload, sources
from warroom.alerts.catalog import catalog
from warroom.alerts.routing import decide
from warroom.config.schema import Integration
from warroom.core.errors import InvalidInput, NotFound
from warroom.incidents import policy
from warroom.incidents.models import Incident, Status
from warroom.jobs.runtime import Runtime
from warroom.oncall import escalation


def translate(raw: bytes, integration: Integration) -> list[sources.Normalized]:
    """Parse a payload as the integration's source would. Raises InvalidInput."""
    body = payload.decode(raw)
    if integration.type == "alertmanager":
        return sources.alertmanager(body)
    if integration.type == "pagerduty_v2":
        try:
            sources.pd_routing_key(
                {"routing_key": "dry-run", **body} if isinstance(body, dict) else body
            )
            event = sources.pagerduty({"routing_key": "dry-run", **body})
        except sources.PdError as exc:
            raise InvalidInput("; ".join(exc.errors), field="body") from None
        return [event.alert]
    if integration.type == "webhook":
        return sources.webhook(body, integration.mapping)
    raise InvalidInput(
        f"integration {integration.id!r} is a {integration.type}; it takes no alerts"
    )


def pick_integration(rt: Runtime, integration_id: str | None) -> Integration:
    if integration_id is not None:
        found = rt.config.integration(integration_id)
        if found is None:
            raise NotFound(
                f"integration {integration_id!r} is not in the config", field="integration"
            )
        return found
    for integration in rt.config.integrations:
        if integration.type == "alertmanager":
            return integration
    # no integration configured: route as an Alertmanager payload would be
    return Integration(id="dry-run", type="alertmanager", token="dry-run")  # noqa: S106 - placeholder, never compared


def route(rt: Runtime, raw: bytes, *, integration_id: str | None = None) -> list[dict[str, Any]]:
    """One entry per alert: route, severity, group, incident to join or open, runbook, pages."""
    integration = pick_integration(rt, integration_id)
    alerts = translate(raw, integration)
    cat = catalog(rt)
    out: list[dict[str, Any]] = []
    with rt.db.read() as s:
        for a in alerts:
            d = decide(rt.config, a, integration=integration.id, catalog=cat)
            open_incident = s.scalar(
                select(Incident)
                .where(Incident.group_key == d.group_key, Incident.status != Status.RESOLVED)
                .order_by(Incident.id)
                .limit(1)
            )
            pol_name = d.route.escalation or policy.policy(rt.config, d.severity).escalation or None
            pages: list[str] = []
            problems: list[str] = []
            if a.status != sources.AlertStatus.FIRING:
                action = (
                    "resolve its alert"
                    if a.status == sources.AlertStatus.RESOLVED
                    else "acknowledge"
                )
            elif open_incident is not None:
                action = f"join incident #{open_incident.number}"
            else:
                action = "open a new incident"
                pol = rt.config.escalation_policies.get(pol_name or "")
                if pol is not None and pol.levels:
                    first = pol.levels[0]
                    targets, problems = escalation.resolve_targets(
                        rt, s, list(first.notify), channels=first.channels
                    )
                    pages = [f"{t.recipient} via {t.channel} ({t.address})" for t in targets]
            rb = cat.get(d.runbook) if d.runbook else None
            out.append(
                {
                    "alert": a.name or a.fingerprint,
                    "status": a.status.value,
                    "fingerprint": a.fingerprint,
                    "integration": integration.id,
                    "route": d.route_index,
                    "route_match": list(d.route.match),
                    "severity": d.severity,
                    "service": d.service,
                    "group_key": d.group_key,
                    "action": action,
                    "incident": open_incident.number if open_incident is not None else None,
                    "runbook": d.runbook,
                    "runbook_found": rb is not None,
                    "runbook_source": d.runbook_source,
                    "auto_steps": [st.id for st in rb.steps if st.auto and not st.mutates]
                    if rb
                    else [],
                    "escalation": pol_name,
                    "would_page": pages,
                    "page_problems": problems,
                }
            )
    return out
