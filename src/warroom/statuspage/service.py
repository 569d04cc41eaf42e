"""Status page state: component states, publishing incidents, public updates, the public view.

Only what a person explicitly made public leaves this module through
`public_view`: component states, the public title of incidents marked public,
and timeline events posted as public updates. Internal titles, notes, people,
alert labels and severities never do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from warroom.config.schema import Config
from warroom.core.errors import InvalidInput
from warroom.core.redact import Redactor
from warroom.incidents import timeline
from warroom.incidents.models import Incident, Status, TimelineEvent
from warroom.statuspage.models import ComponentState

UPDATE_KIND = "status.update"
PUBLISHED_KIND = "status.published"
COMPONENT_KIND = "status.component"
MAX_PUBLIC_TEXT = 5_000
MAX_PUBLIC_TITLE = 200
RECENT = timedelta(days=14)


class State(StrEnum):
    OPERATIONAL = "operational"
    DEGRADED = "degraded"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"
    MAINTENANCE = "maintenance"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()

    @property
    def rank(self) -> int:
        # how bad it is, for the page's overall banner
        order = ["operational", "maintenance", "degraded", "partial_outage", "major_outage"]
        return order.index(self.value)


def parse_state(value: str) -> State:
    try:
        return State(str(value).strip().lower().replace(" ", "_"))
    except ValueError:
        raise InvalidInput(
            f"unknown component state {value!r}",
            field="state",
            hint="use " + ", ".join(s.value for s in State),
        ) from None


def parse_public_status(value: str) -> Status:
    try:
        return Status(str(value).strip().lower())
    except ValueError:
        raise InvalidInput(
            f"unknown status {value!r}",
            field="status",
            hint="use investigating, identified, monitoring or resolved",
        ) from None


@dataclass(frozen=True)
class Component:
    name: str
    state: State
    updated_at: datetime | None


@dataclass(frozen=True)
class PublicUpdate:
    at: datetime
    status: str
    text: str


@dataclass(frozen=True)
class PublicIncident:
    number: int
    title: str
    status: str
    started_at: datetime
    resolved_at: datetime | None
    components: list[str]
    updates: list[PublicUpdate] = field(default_factory=list)

    @property
    def current(self) -> bool:
        return self.status != Status.RESOLVED


@dataclass(frozen=True)
class PublicView:
    title: str
    overall: State
    components: list[Component]
    incidents: list[PublicIncident]
    updated_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        def iso(d: datetime | None) -> str | None:
            return d.isoformat() if d else None

        return {
            "title": self.title,
            "overall": {"state": self.overall.value, "label": self.overall.label},
            "updated_at": iso(self.updated_at),
            "components": [
                {"name": c.name, "state": c.state.value, "updated_at": iso(c.updated_at)}
                for c in self.components
            ],
            "incidents": [
                {
                    "id": i.number,
                    "title": i.title,
                    "status": i.status,
                    "current": i.current,
                    "started_at": iso(i.started_at),
                    "resolved_at": iso(i.resolved_at),
                    "components": i.components,
                    "updates": [
                        {"at": iso(u.at), "status": u.status, "text": u.text} for u in i.updates
                    ],
                }
                for i in self.incidents
            ],
        }


def components(session: Session, *, config: Config) -> list[Component]:
    """The configured components in config order, with their current states."""
    rows = {r.name: r for r in session.scalars(select(ComponentState))}
    out = []
    for name in config.status_page.components:
        row = rows.get(name)
        state = State.OPERATIONAL
        if row is not None:
            try:
                state = State(row.state)
            except ValueError:  # a state written by a newer version: say "degraded", not crash
                state = State.DEGRADED
        out.append(Component(name=name, state=state, updated_at=row.updated_at if row else None))
    return out


def _check_component(config: Config, name: str, field: str = "component") -> str:
    if name not in config.status_page.components:
        known = ", ".join(config.status_page.components) or "none configured"
        raise InvalidInput(
            f"unknown status-page component {name!r}",
            field=field,
            hint=f"components in warroom.yaml: {known}",
        )
    return name


def set_component(
    session: Session, *, config: Config, name: str, state: str, actor: str, now: datetime
) -> Component:
    """Set one component's state. Raises InvalidInput for an unknown component or state."""
    _check_component(config, name)
    new = parse_state(state)
    row = session.get(ComponentState, name)
    if row is None:
        row = ComponentState(name=name, state=new.value, updated_at=now, updated_by=actor)
        session.add(row)
    else:
        row.state = new.value
        row.updated_at = now
        row.updated_by = actor
    session.flush()
    return Component(name=name, state=new, updated_at=now)


def _clean_public_text(text: str, *, field: str, limit: int) -> str:
    text = str(text).strip()
    if not text:
        raise InvalidInput(f"{field} must not be empty", field=field)
    if len(text) > limit:
        raise InvalidInput(f"{field} longer than {limit} characters", field=field)
    return text


def publish(
    session: Session,
    incident: Incident,
    *,
    config: Config,
    public_title: str,
    components: Sequence[str] = (),
    actor: str,
    now: datetime,
    redactor: Redactor | None = None,
) -> None:
    """Show an incident on the public page under a public title (never its internal title)."""
    title = " ".join(
        _clean_public_text(public_title, field="public_title", limit=MAX_PUBLIC_TITLE).split()
    )
    if redactor is not None:
        title = redactor.redact(title)
    comps = [_check_component(config, c, "components") for c in dict.fromkeys(components)]
    incident.is_public = True
    incident.public_title = title
    incident.components = comps
    timeline.add(
        session,
        incident,
        kind=PUBLISHED_KIND,
        actor=actor,
        at=now,
        text=f"Published on the status page as {title!r}",
        data={"public_title": title, "components": comps},
    )


def post_update(
    session: Session,
    incident: Incident,
    *,
    status: str,
    text: str,
    actor: str,
    now: datetime,
    redactor: Redactor | None = None,
) -> TimelineEvent:
    """Post a public update; the incident must already be published. Raises InvalidInput."""
    if not incident.is_public or not incident.public_title:
        raise InvalidInput(
            f"incident {incident.number} is not on the status page",
            field="public_title",
            hint="publish it with a public title first",
        )
    st = parse_public_status(status)
    body = _clean_public_text(text, field="text", limit=MAX_PUBLIC_TEXT)
    return timeline.add(
        session,
        incident,
        kind=UPDATE_KIND,
        actor=actor,
        at=now,
        text=body,
        data={"status": st.value},
        public=True,
        redactor=redactor,
    )


def _public_status(incident: Incident, updates: list[PublicUpdate]) -> str:
    # the public status is what was last told to the public; a resolved incident is resolved
    if incident.status == Status.RESOLVED:
        return Status.RESOLVED.value
    return updates[-1].status if updates else Status.INVESTIGATING.value


def public_view(session: Session, *, config: Config, now: datetime) -> PublicView:
    """Everything the public page shows, and nothing else."""
    comps = components(session, config=config)
    since = now - RECENT
    rows = list(
        session.scalars(
            select(Incident)
            .where(Incident.is_public.is_(True), Incident.is_drill.is_(False))
            .order_by(Incident.declared_at.desc())
            .limit(200)
        )
    )
    rows = [r for r in rows if r.resolved_at is None or r.resolved_at >= since][:50]
    updates_by: dict[int, list[PublicUpdate]] = {r.id: [] for r in rows}
    if rows:
        events = session.scalars(
            select(TimelineEvent)
            .where(
                TimelineEvent.incident_id.in_(list(updates_by)),
                TimelineEvent.public.is_(True),
                TimelineEvent.kind == UPDATE_KIND,
            )
            .order_by(TimelineEvent.at, TimelineEvent.id)
        )
        for ev in events:
            updates_by[ev.incident_id].append(
                PublicUpdate(at=ev.at, status=str((ev.data or {}).get("status", "")), text=ev.text)
            )
    incidents = []
    for r in rows:
        ups = updates_by[r.id]
        incidents.append(
            PublicIncident(
                number=r.number,
                title=r.public_title or "Service disruption",
                status=_public_status(r, ups),
                started_at=r.declared_at,
                resolved_at=r.resolved_at,
                components=[c for c in (r.components or []) if c in config.status_page.components],
                updates=list(reversed(ups)),  # newest first, as status pages read
            )
        )
    overall = max((c.state for c in comps), key=lambda s: s.rank, default=State.OPERATIONAL)
    if overall == State.OPERATIONAL and any(i.current for i in incidents):
        # an open public incident with every component green would read as a lie
        overall = State.DEGRADED
    stamps = [c.updated_at for c in comps if c.updated_at] + [
        u.at for i in incidents for u in i.updates[:1]
    ]
    return PublicView(
        title=config.status_page.title,
        overall=overall,
        components=comps,
        incidents=incidents,
        updated_at=max(stamps) if stamps else None,
    )
