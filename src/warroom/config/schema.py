"""Schema of warroom.yaml (DESIGN §8). Unknown keys are errors, so typos surface."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from warroom.core.durations import parse_duration
from warroom.core.errors import InvalidInput
from warroom.core.matchers import Matcher, parse_matchers

Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
ENV_REF = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")


class Severity(StrEnum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(value)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None


Duration = Annotated[timedelta, Field(), "duration"]


def _tz(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)"
        ) from None
    return value


class SeverityPolicy(Strict):
    name: str
    description: str = ""
    respond_within: timedelta
    escalation: str = ""
    postmortem: Literal["required", "optional", "none"] = "optional"

    _d = field_validator("respond_within", mode="before")(_duration)


DEFAULT_SEVERITIES: dict[str, dict[str, Any]] = {
    "P0": {
        "name": "Critical",
        "description": "Complete service outage, data breach",
        "respond_within": "15m",
        "escalation": "page-oncall",
        "postmortem": "required",
    },
    "P1": {
        "name": "High",
        "description": "Major functionality impaired",
        "respond_within": "1h",
        "escalation": "notify-lead",
        "postmortem": "required",
    },
    "P2": {
        "name": "Medium",
        "description": "Degraded performance",
        "respond_within": "4h",
        "escalation": "ticket",
    },
    "P3": {
        "name": "Low",
        "description": "Minor issues, cosmetic bugs",
        "respond_within": "24h",
        "escalation": "backlog",
    },
}


class ContactMethod(Strict):
    channel: str
    address: str | None = None  # default: the person's email for smtp channels


class Person(Strict):
    id: Ident
    name: str
    email: str | None = None
    timezone: str | None = None
    role: Literal["viewer", "responder", "commander", "admin"] = "responder"
    contact: list[ContactMethod] = Field(default_factory=list)

    _tz = field_validator("timezone")(lambda v: v if v is None else _tz(v))


class Team(Strict):
    id: Ident
    name: str
    lead: str | None = None
    members: list[str] = Field(default_factory=list)


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MutatingPolicy = Literal["two-person", "commander", "responder"]


class Restriction(Strict):
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))
    from_: str = Field("00:00", alias="from")
    to: str = "24:00"

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("from_", "to")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d|24:00", v):
            raise ValueError(f"expected HH:MM, got {v!r}")
        return v


class EveryRotation(Strict):
    every: timedelta
    _d = field_validator("every", mode="before")(_duration)


class Layer(Strict):
    rotation: Literal["daily", "weekly"] | EveryRotation = "weekly"
    handoff: str = "monday 09:00"
    start: datetime | None = None  # the first hand-off the rotation counts from
    members: list[str]
    restrict: Restriction | None = None

    @field_validator("members")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("a layer needs at least one member")
        return v


class Override(Strict):
    person: str
    from_: datetime = Field(alias="from")
    to: datetime
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _order(self) -> Override:
        if self.from_.tzinfo is None or self.to.tzinfo is None:
            raise ValueError("override times need a UTC offset, e.g. 2026-12-24T00:00:00+01:00")
        if self.to <= self.from_:
            raise ValueError("override 'to' must be after 'from'")
        return self


class Schedule(Strict):
    id: Ident
    name: str = ""
    timezone: str = "UTC"
    layers: list[Layer]
    overrides: list[Override] = Field(default_factory=list)

    _tz = field_validator("timezone")(_tz)


class EscalationLevel(Strict):
    notify: list[str]
    after: timedelta = timedelta(0)
    channels: list[str] | None = None  # restrict this level to these channels

    _d = field_validator("after", mode="before")(_duration)

    @field_validator("notify")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        for target in v:
            kind = target.split(":", 1)[0]
            if kind not in ("schedule", "person", "team", "channel") or ":" not in target:
                raise ValueError(
                    f"target {target!r} must be schedule:ID, person:ID, team:ID[:lead] "
                    "or channel:ID"
                )
        return v


class EscalationPolicy(Strict):
    repeat: int = Field(0, ge=0, le=20)
    levels: list[EscalationLevel] = Field(default_factory=list)


class RetryPolicy(Strict):
    max_attempts: int = Field(8, ge=1, le=100)
    backoff_base: timedelta = timedelta(seconds=2)
    backoff_cap: timedelta = timedelta(seconds=60)
    timeout: timedelta = timedelta(seconds=10)

    _d = field_validator("backoff_base", "backoff_cap", "timeout", mode="before")(_duration)


class Channel(Strict):
    type: Literal[
        "smtp",
        "slack_webhook",
        "teams_webhook",
        "mattermost_webhook",
        "discord_webhook",
        "webhook",
    ]
    # smtp
    host: str | None = None
    port: int | None = None
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: str | None = None
    from_: str | None = Field(None, alias="from")
    to: str | None = None  # fixed recipient (ticket address) for channel:ID targets
    # webhooks
    url: str | None = None
    secret: str | None = None
    fallback: str | None = None  # channel id to use when this one keeps failing
    rate_limit_per_minute: int = Field(30, ge=1)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _required(self) -> Channel:
        if self.type == "smtp":
            if not self.host:
                raise ValueError("an smtp channel needs 'host'")
            if not self.from_:
                raise ValueError("an smtp channel needs 'from'")
        elif not self.url:
            raise ValueError(f"a {self.type} channel needs 'url'")
        return self


class Integration(Strict):
    id: Ident
    type: Literal["alertmanager", "pagerduty_v2", "webhook", "heartbeat"]
    token: str
    # generic webhook: dotted paths into the JSON body
    mapping: dict[str, str] = Field(default_factory=dict)
    hmac_secret: str | None = None
    # heartbeat
    expect_every: timedelta | None = None
    severity: Severity = Severity.P2
    service: str | None = None
    rate_limit_per_second: float = Field(500.0, gt=0)

    @field_validator("expect_every", mode="before")
    @classmethod
    def _d(cls, v: Any) -> Any:
        return None if v is None else _duration(v)

    @model_validator(mode="after")
    def _heartbeat(self) -> Integration:
        if self.type == "heartbeat" and self.expect_every is None:
            raise ValueError("a heartbeat integration needs 'expect_every'")
        return self


class Route(Strict):
    match: list[str] = Field(default_factory=list)
    severity: Severity | None = None
    service: str | None = None
    runbook: str | None = None
    group_by: list[str] = Field(default_factory=lambda: ["alertname"])
    escalation: str | None = None
    integration: str | None = None  # only alerts from this integration
    continue_: bool = Field(False, alias="continue")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("match")
    @classmethod
    def _matchers(cls, v: list[str]) -> list[str]:
        for text in v:
            try:
                parse_matchers(text)
            except InvalidInput as exc:
                raise ValueError(exc.message) from None
        return v

    def matchers(self) -> list[Matcher]:
        out: list[Matcher] = []
        for text in self.match:
            out.extend(parse_matchers(text))
        return out


class Connection(Strict):
    type: Literal["prometheus", "sql", "http"]
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: timedelta = timedelta(seconds=30)

    _d = field_validator("timeout", mode="before")(_duration)


class WarRoom(Strict):
    video: str | None = None
    chat: str | None = None
    status_page: str | None = None
    bridge: str | None = None


class Contact(Strict):
    role: str
    reach: str


class StatusPage(Strict):
    title: str = "Status"
    components: list[str] = Field(default_factory=list)


class AutoDiagnostics(Strict):
    max_concurrent: int = Field(4, ge=1, le=64)
    per_runbook_per_minute: int = Field(10, ge=1)


def _default_mutating() -> dict[str, MutatingPolicy]:
    return {"P0": "two-person", "default": "commander"}


class Policies(Strict):
    when_alerts_resolve: Literal["monitoring", "resolve", "nothing"] = "monitoring"
    auto_diagnostics: AutoDiagnostics = Field(default_factory=AutoDiagnostics)
    mutating_steps: dict[str, MutatingPolicy] = Field(default_factory=_default_mutating)
    ack_link_ttl: timedelta = timedelta(hours=24)
    postmortem_reminder_every: timedelta = timedelta(days=1)

    _d = field_validator("ack_link_ttl", "postmortem_reminder_every", mode="before")(_duration)


class Templates(Strict):
    internal_update: str | None = None
    status_page: str | None = None
    customer_notice: str | None = None
    executive_summary: str | None = None
    postmortem: str | None = None


class Config(Strict):
    organization: str = "Example Corp"
    timezone: str = "UTC"
    severities: dict[Severity, SeverityPolicy] = Field(
        default_factory=lambda: {
            Severity(k): SeverityPolicy.model_validate(v) for k, v in DEFAULT_SEVERITIES.items()
        }
    )
    people: list[Person] = Field(default_factory=list)
    teams: list[Team] = Field(default_factory=list)
    schedules: list[Schedule] = Field(default_factory=list)
    escalation_policies: dict[str, EscalationPolicy] = Field(default_factory=dict)
    channels: dict[str, Channel] = Field(default_factory=dict)
    integrations: list[Integration] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    connections: dict[str, Connection] = Field(default_factory=dict)
    war_room: WarRoom = Field(default_factory=WarRoom)
    contacts: list[Contact] = Field(default_factory=list)
    status_page: StatusPage = Field(default_factory=StatusPage)
    policies: Policies = Field(default_factory=Policies)
    templates: Templates = Field(default_factory=Templates)
    redact_patterns: list[str] = Field(default_factory=list)

    _tz = field_validator("timezone")(_tz)

    @field_validator("severities", mode="before")
    @classmethod
    def _fill_severities(cls, v: Any) -> Any:
        # a partial table overrides only the levels it names
        if isinstance(v, dict):
            merged: dict[str, Any] = {k: dict(x) for k, x in DEFAULT_SEVERITIES.items()}
            for key, value in v.items():
                if isinstance(value, dict) and str(key) in merged:
                    merged[str(key)] = {**merged[str(key)], **value}
                else:
                    merged[str(key)] = value
            return merged
        return v

    # lookups -------------------------------------------------------------
    def person(self, person_id: str) -> Person | None:
        return next((p for p in self.people if p.id == person_id), None)

    def team(self, team_id: str) -> Team | None:
        return next((t for t in self.teams if t.id == team_id), None)

    def schedule(self, schedule_id: str) -> Schedule | None:
        return next((s for s in self.schedules if s.id == schedule_id), None)

    def integration(self, integration_id: str) -> Integration | None:
        return next((i for i in self.integrations if i.id == integration_id), None)

    def owners(self) -> set[str]:
        return {p.id for p in self.people} | {t.id for t in self.teams}
