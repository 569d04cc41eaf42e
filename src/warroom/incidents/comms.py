"""Communications: war-room details and update templates rendered from an incident.

Templates come from config (`templates:`) or the defaults below and are the
only template text ever compiled. Incident, alert and person data go in as
values, so a title like `{{ 7*7 }}` is printed as written; rendered output is
never rendered again.

Values a template may use: organization, number, title, severity,
severity_name, severity_description, status, services, runbooks, summary,
customer_impact, commander, communications, scribe, responders, declared_at,
detected_at, acknowledged_at, acknowledged_by, mitigated_at, resolved_at,
respond_by (all times "YYYY-MM-DD HH:MM UTC", empty when unset), breached,
duration, is_drill, message (the text the sender adds), war_room.{video,
chat, status_page, bridge} and contacts (a list of {role, reach}).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from warroom.config.schema import Config
from warroom.core import templating
from warroom.core.clock import as_utc
from warroom.core.durations import format_duration
from warroom.core.errors import InvalidInput
from warroom.core.redact import Redactor
from warroom.incidents import policy, timeline
from warroom.incidents.models import Incident, TimelineEvent

MAX_MESSAGE = 5_000


class Template(StrEnum):
    INTERNAL_UPDATE = "internal_update"
    STATUS_PAGE = "status_page"
    CUSTOMER_NOTICE = "customer_notice"
    EXECUTIVE_SUMMARY = "executive_summary"


DEFAULTS: dict[Template, str] = {
    Template.INTERNAL_UPDATE: (
        "[{{ severity }}] Incident #{{ number }}: {{ title }}\n"
        "Status: {{ status }} · open for {{ duration }}"
        "{% if commander %} · commander {{ commander }}{% endif %}\n"
        "{% if services %}Services: {{ services | join(', ') }}\n{% endif %}"
        "{% if message %}\n{{ message }}\n{% endif %}"
        "{% if summary %}\nSummary: {{ summary }}\n{% endif %}"
        "{% if war_room.video or war_room.chat %}\nWar room:"
        "{% if war_room.video %} video {{ war_room.video }}{% endif %}"
        "{% if war_room.chat %} chat {{ war_room.chat }}{% endif %}\n{% endif %}"
        "{% if contacts %}\nContacts:\n{% for c in contacts %}- {{ c.role }}: {{ c.reach }}\n"
        "{% endfor %}{% endif %}"
    ),
    Template.STATUS_PAGE: (
        "{% if status == 'resolved' %}This incident has been resolved."
        "{% elif status == 'monitoring' %}A fix has been applied and we are monitoring the results."
        "{% elif status == 'identified' %}The cause has been identified and a fix is in progress."
        "{% else %}We are investigating reports of degraded service"
        "{% if services %} affecting {{ services | join(', ') }}{% endif %}.{% endif %}"
        "{% if message %} {{ message }}{% endif %}\n"
    ),
    Template.CUSTOMER_NOTICE: (
        "Dear customer,\n\n"
        "{% if status == 'resolved' %}The issue that affected "
        "{{ services | join(', ') if services else 'our service' }} since {{ declared_at }} "
        "has been resolved.{% else %}Since {{ declared_at }} we have been working on an issue "
        "affecting {{ services | join(', ') if services else 'our service' }}.{% endif %}\n"
        "{% if customer_impact %}\nImpact: {{ customer_impact }}\n{% endif %}"
        "{% if message %}\n{{ message }}\n{% endif %}"
        "{% if war_room.status_page %}\nFollow updates at {{ war_room.status_page }}\n{% endif %}"
        "\n{{ organization }}\n"
    ),
    Template.EXECUTIVE_SUMMARY: (
        "Incident #{{ number }} ({{ severity }} {{ severity_name }}): {{ title }}\n"
        "Status: {{ status }}; declared {{ declared_at }}; open for {{ duration }}"
        "{% if acknowledged_at %}; acknowledged {{ acknowledged_at }}{% endif %}"
        "{% if resolved_at %}; resolved {{ resolved_at }}{% endif %}\n"
        "{% if breached %}Response-time target was missed.\n{% endif %}"
        "{% if customer_impact %}Customer impact: {{ customer_impact }}\n{% endif %}"
        "{% if summary %}Summary: {{ summary }}\n{% endif %}"
        "{% if commander %}Commander: {{ commander }}\n{% endif %}"
        "{% if message %}\n{{ message }}\n{% endif %}"
    ),
}


@dataclass(frozen=True)
class Rendered:
    template: Template
    body: str


def parse_template(name: str) -> Template:
    try:
        return Template(str(name).strip().lower().replace("-", "_"))
    except ValueError:
        raise InvalidInput(
            f"unknown communications template {name!r}",
            field="template",
            hint="use " + ", ".join(t.value for t in Template),
        ) from None


def template_text(config: Config, template: Template) -> str:
    """The configured text for a template, or the built-in default."""
    configured: str | None = getattr(config.templates, template.value, None)
    return configured or DEFAULTS[template]


def war_room(config: Config) -> dict[str, Any]:
    """War-room details and emergency contacts shown on every incident."""
    return {
        "video": config.war_room.video,
        "chat": config.war_room.chat,
        "status_page": config.war_room.status_page,
        "bridge": config.war_room.bridge,
        "contacts": [{"role": c.role, "reach": c.reach} for c in config.contacts],
    }


def _iso(value: datetime | None) -> str:
    return as_utc(value).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def values(
    config: Config, incident: Incident, *, now: datetime, message: str = ""
) -> dict[str, Any]:
    """Everything a template may use; plain values only (strings, numbers, lists, dicts)."""
    sev = policy.policy(config, incident.severity)
    end = incident.resolved_at or now
    room = war_room(config)
    return {
        "organization": config.organization,
        "number": incident.number,
        "title": incident.title,
        "severity": incident.severity,
        "severity_name": sev.name,
        "severity_description": sev.description,
        "status": incident.status,
        "services": list(incident.services or []),
        "runbooks": list(incident.runbooks or []),
        "summary": incident.summary,
        "customer_impact": incident.customer_impact,
        "commander": incident.commander or "",
        "communications": incident.communications or "",
        "scribe": incident.scribe or "",
        "responders": list(incident.responders or []),
        "declared_at": _iso(incident.declared_at),
        "detected_at": _iso(incident.detected_at),
        "acknowledged_at": _iso(incident.acknowledged_at),
        "acknowledged_by": incident.acknowledged_by or "",
        "mitigated_at": _iso(incident.mitigated_at),
        "resolved_at": _iso(incident.resolved_at),
        "respond_by": _iso(incident.respond_by),
        "breached": incident.breached_at is not None,
        "duration": format_duration(as_utc(end) - as_utc(incident.declared_at)),
        "is_drill": incident.is_drill,
        "message": message,
        "war_room": {k: v or "" for k, v in room.items() if k != "contacts"},
        "contacts": room["contacts"],
    }


def render(
    config: Config,
    incident: Incident,
    template: str,
    *,
    now: datetime,
    message: str = "",
    redactor: Redactor | None = None,
) -> Rendered:
    """Render one template for an incident. Raises InvalidInput (unknown or broken template)."""
    tpl = parse_template(template)
    if len(message) > MAX_MESSAGE:
        raise InvalidInput(f"message longer than {MAX_MESSAGE} characters", field="message")
    body = templating.render(
        template_text(config, tpl),
        values(config, incident, now=now, message=message),
        name=f"templates.{tpl.value}",
    )
    if redactor is not None:
        body = redactor.redact(body)
    return Rendered(template=tpl, body=body)


def record_update(
    session: Session,
    incident: Incident,
    rendered: Rendered,
    *,
    actor: str,
    now: datetime,
    public: bool = False,
    redactor: Redactor | None = None,
) -> TimelineEvent:
    """Write a sent update to the timeline (the record of what we told whom)."""
    return timeline.add(
        session,
        incident,
        kind=timeline.UPDATE_SENT,
        actor=actor,
        at=now,
        text=rendered.body,
        data={"template": rendered.template.value, "public": public},
        redactor=redactor,
    )
