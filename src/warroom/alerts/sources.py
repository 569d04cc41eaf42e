"""Alert sources: pure translations from a decoded body to normalised alerts.

Each source validates with pydantic and raises InvalidInput naming the first
bad field; nothing here touches the database.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from warroom.core.errors import InvalidInput, TooLarge

MAX_ALERTS = 5000
MAX_LABELS = 64
MAX_LABEL_VALUE = 2048
MAX_ANNOTATION_VALUE = 16_384
MAX_FINGERPRINT = 200
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
ZERO_TIME_YEAR = 1  # Alertmanager sends 0001-01-01T00:00:00Z for "no end yet"
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


class AlertStatus(StrEnum):
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass
class Normalized:
    """One alert as every source delivers it to the ingest service."""

    fingerprint: str
    status: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    name: str = ""
    summary: str = ""
    source_severity: str = ""
    generator_url: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None


def _first_error(exc: ValidationError, prefix: str = "") -> InvalidInput:
    err = exc.errors()[0]
    loc = ""
    for part in err["loc"]:
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    path = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "body")
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "required field is missing"
    elif err["type"] == "extra_forbidden":
        msg = "unknown field"
    return InvalidInput(f"{path}: {msg}", field=path)


def _labels(value: dict[str, str], *, kind: str, limit: int) -> dict[str, str]:
    if len(value) > MAX_LABELS * (4 if kind == "annotation" else 1):
        raise ValueError(f"more than {MAX_LABELS} {kind}s")
    for name, text in value.items():
        if kind == "label" and not LABEL_NAME.fullmatch(name):
            raise ValueError(f"invalid label name {name[:60]!r}")
        if len(text) > limit:
            raise ValueError(f"{kind} {name[:60]!r} is longer than {limit} characters")
    return value


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("timestamp needs a time zone (e.g. 2026-11-29T10:00:00Z)")
    if value.year == ZERO_TIME_YEAR:
        return None
    value = value.astimezone(UTC)
    if value < EARLIEST:
        raise ValueError("timestamp is before 1970")
    return value


def fingerprint_of(labels: dict[str, str]) -> str:
    text = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# ---------------------------------------------------------------- Alertmanager
class _AmAlert(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=False)
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime | None = None  # noqa: N815 - Alertmanager's field names
    endsAt: datetime | None = None  # noqa: N815
    generatorURL: str = Field("", max_length=4096)  # noqa: N815
    fingerprint: str = Field("", max_length=MAX_FINGERPRINT)

    @field_validator("labels")
    @classmethod
    def _l(cls, v: dict[str, str]) -> dict[str, str]:
        return _labels(v, kind="label", limit=MAX_LABEL_VALUE)

    @field_validator("annotations")
    @classmethod
    def _a(cls, v: dict[str, str]) -> dict[str, str]:
        return _labels(v, kind="annotation", limit=MAX_ANNOTATION_VALUE)

    @field_validator("startsAt", "endsAt")
    @classmethod
    def _t(cls, v: datetime | None) -> datetime | None:
        return _aware(v)

    @model_validator(mode="after")
    def _order(self) -> _AmAlert:
        if (
            self.status == "resolved"
            and self.startsAt is not None
            and self.endsAt is not None
            and self.endsAt < self.startsAt
        ):
            raise ValueError("endsAt is before startsAt")
        return self


class _AmPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")
    version: str = "4"
    status: Literal["firing", "resolved"] | None = None
    receiver: str = ""
    groupKey: str = ""  # noqa: N815
    alerts: list[dict[str, Any]]

    @field_validator("version")
    @classmethod
    def _v(cls, v: str) -> str:
        if v != "4":
            raise ValueError(f"unsupported webhook version {v[:20]!r}; Alertmanager sends '4'")
        return v


def _check_batch(body: Any, key: str = "alerts") -> None:
    if not isinstance(body, dict):
        raise InvalidInput("body must be a JSON object", field="body")
    alerts = body.get(key)
    if isinstance(alerts, list) and len(alerts) > MAX_ALERTS:
        raise TooLarge(f"{len(alerts)} alerts in one request; the limit is {MAX_ALERTS}", field=key)


def alertmanager(body: Any) -> list[Normalized]:
    """Translate an Alertmanager webhook (version 4). Raises InvalidInput / TooLarge."""
    _check_batch(body)
    try:
        payload = _AmPayload.model_validate(body)
    except ValidationError as exc:
        raise _first_error(exc) from None
    out: list[Normalized] = []
    for i, raw in enumerate(payload.alerts):
        try:
            a = _AmAlert.model_validate(raw)
        except ValidationError as exc:
            raise _first_error(exc, f"alerts[{i}]") from None
        labels = dict(a.labels)
        out.append(
            Normalized(
                fingerprint=a.fingerprint or fingerprint_of(labels),
                status=AlertStatus(a.status),
                labels=labels,
                annotations=dict(a.annotations),
                name=labels.get("alertname", ""),
                summary=a.annotations.get("summary") or a.annotations.get("description", ""),
                source_severity=labels.get("severity", ""),
                generator_url=a.generatorURL,
                starts_at=a.startsAt,
                ends_at=a.endsAt,
            )
        )
    return unique(out)


def unique(alerts: list[Normalized]) -> list[Normalized]:
    """Refuse a batch naming one fingerprint twice (no sender does that; it hides a bug)."""
    seen: dict[str, int] = {}
    for i, a in enumerate(alerts):
        if a.fingerprint in seen:
            raise InvalidInput(
                f"alerts[{i}]: fingerprint {a.fingerprint[:60]!r} repeats alerts[{seen[a.fingerprint]}]",
                field=f"alerts[{i}].fingerprint",
            )
        seen[a.fingerprint] = i
    return alerts


# ---------------------------------------------------------- PagerDuty Events v2
PD_SEVERITIES = ("critical", "error", "warning", "info")


class PdError(Exception):
    """A PagerDuty-shaped refusal: `{"status": "invalid event", "message", "errors"}`."""

    def __init__(self, errors: list[str], *, message: str = "Event object is invalid") -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class _PdPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")
    summary: str = Field(min_length=1, max_length=1024)
    source: str = Field(min_length=1, max_length=255)
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: datetime | None = None
    component: str | None = Field(None, max_length=255)
    group: str | None = Field(None, max_length=255)
    class_: str | None = Field(None, alias="class", max_length=255)
    custom_details: Any = None

    @field_validator("timestamp")
    @classmethod
    def _t(cls, v: datetime | None) -> datetime | None:
        return _aware(v)


@dataclass
class PdEvent:
    routing_key: str
    action: str  # trigger | acknowledge | resolve
    dedup_key: str
    alert: Normalized


def pd_routing_key(body: Any) -> str:
    """The routing key of an event, checked first so an unknown key is refused early."""
    if not isinstance(body, dict):
        raise PdError(["Event object must be a JSON object"])
    key = body.get("routing_key")
    if not isinstance(key, str) or not key.strip():
        raise PdError(["'routing_key' is missing or blank"])
    return key


def pagerduty(body: dict[str, Any]) -> PdEvent:
    """Translate one Events API v2 event. Raises PdError listing every problem."""
    problems: list[str] = []
    key = pd_routing_key(body)
    action = body.get("event_action")
    if action is None:
        problems.append("'event_action' is missing")
    elif action not in ("trigger", "acknowledge", "resolve"):
        problems.append("'event_action' must be one of trigger, acknowledge, resolve")
    dedup = body.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        problems.append("'dedup_key' must be a string of at most 255 characters")
        dedup = None
    if action in ("acknowledge", "resolve") and not dedup:
        problems.append(f"'dedup_key' is required for event_action {action}")
    payload: _PdPayload | None = None
    if action == "trigger":
        raw = body.get("payload")
        if not isinstance(raw, dict):
            problems.append("'payload' is missing or not an object")
        else:
            try:
                payload = _PdPayload.model_validate(raw)
            except ValidationError as exc:
                for err in exc.errors():
                    loc = ".".join(str(p) for p in err["loc"])
                    msg = "is missing" if err["type"] == "missing" else str(err["msg"])
                    problems.append(f"'payload.{loc}' {msg}")
    if problems:
        raise PdError(problems)
    dedup_key = dedup or uuid.uuid4().hex
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    status = {
        "trigger": AlertStatus.FIRING,
        "acknowledge": AlertStatus.ACKNOWLEDGED,
        "resolve": AlertStatus.RESOLVED,
    }[str(action)]
    summary = ""
    severity = ""
    starts = None
    if payload is not None:
        summary = " ".join(payload.summary.split())
        severity = payload.severity
        starts = payload.timestamp
        labels = {"alertname": summary[:200], "source": payload.source, "severity": severity}
        for name, value in (
            ("component", payload.component),
            ("group", payload.group),
            ("class", payload.class_),
        ):
            if value:
                labels[name] = value
        annotations = {"summary": summary}
        if payload.custom_details is not None:
            annotations["custom_details"] = json.dumps(payload.custom_details)[
                :MAX_ANNOTATION_VALUE
            ]
    return PdEvent(
        routing_key=key,
        action=str(action),
        dedup_key=dedup_key,
        alert=Normalized(
            fingerprint=dedup_key,
            status=status,
            labels=labels,
            annotations=annotations,
            name=labels.get("alertname", ""),
            summary=summary,
            source_severity=severity,
            starts_at=starts,
        ),
    )


# ---------------------------------------------------------- generic webhook
FIRING_WORDS = frozenset(
    {"firing", "triggered", "trigger", "alerting", "problem", "open", "active"}
)
RESOLVED_WORDS = frozenset(
    {"resolved", "resolve", "ok", "closed", "recovered", "normal", "inactive"}
)
MAPPING_KEYS = frozenset(
    {
        "alerts",
        "fingerprint",
        "name",
        "summary",
        "status",
        "severity",
        "labels",
        "annotations",
        "starts_at",
        "ends_at",
        "url",
    }
)
_MISSING = object()


def dig(data: Any, path: str) -> Any:
    """Follow a dotted path (`a.b.0.c`) into JSON; returns _MISSING when absent."""
    cur = data
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


def _scalar(value: Any, path: str, *, limit: int = MAX_LABEL_VALUE) -> str:
    if value is _MISSING or value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidInput(f"{path}: expected a string or number", field=path)
    text = str(value)
    if len(text) > limit:
        raise InvalidInput(f"{path}: longer than {limit} characters", field=path)
    return text


def _time(value: Any, path: str) -> datetime | None:
    if value is _MISSING or value is None or value == "":
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _aware(datetime.fromtimestamp(float(value), tz=UTC))
        if isinstance(value, str):
            return _aware(datetime.fromisoformat(value))
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidInput(f"{path}: {exc}", field=path) from None
    raise InvalidInput(f"{path}: expected an ISO 8601 time or epoch seconds", field=path)


def webhook(body: Any, mapping: dict[str, str]) -> list[Normalized]:
    """Translate a generic JSON body with the integration's dotted-path `mapping`."""
    if not isinstance(body, dict | list):
        raise InvalidInput("body must be a JSON object or array", field="body")
    items: list[Any]
    prefix = ""
    if "alerts" in mapping:
        found = dig(body, mapping["alerts"])
        if not isinstance(found, list):
            raise InvalidInput(
                f"{mapping['alerts']}: expected a list of alerts", field=mapping["alerts"]
            )
        items, prefix = found, mapping["alerts"]
    else:
        items = body if isinstance(body, list) else [body]
    if len(items) > MAX_ALERTS:
        raise TooLarge(f"{len(items)} alerts in one request; the limit is {MAX_ALERTS}")
    out: list[Normalized] = []
    for i, item in enumerate(items):
        base = f"{prefix}[{i}]" if prefix or len(items) > 1 else ""

        def path(key: str, base: str = base) -> str:
            return f"{base}.{mapping.get(key, key)}" if base else mapping.get(key, key)

        labels_raw = dig(item, mapping.get("labels", "labels"))
        labels: dict[str, str] = {}
        if isinstance(labels_raw, dict):
            for k, v in labels_raw.items():
                labels[str(k)] = _scalar(v, f"{path('labels')}.{k}")
        elif labels_raw is not _MISSING:
            raise InvalidInput(f"{path('labels')}: expected an object", field=path("labels"))
        annotations_raw = dig(item, mapping.get("annotations", "annotations"))
        annotations: dict[str, str] = {}
        if isinstance(annotations_raw, dict):
            for k, v in annotations_raw.items():
                annotations[str(k)] = _scalar(
                    v, f"{path('annotations')}.{k}", limit=MAX_ANNOTATION_VALUE
                )
        name = _scalar(dig(item, mapping.get("name", "name")), path("name"))
        summary = _scalar(
            dig(item, mapping.get("summary", "summary")),
            path("summary"),
            limit=MAX_ANNOTATION_VALUE,
        )
        severity = _scalar(dig(item, mapping.get("severity", "severity")), path("severity"))
        if name:
            labels.setdefault("alertname", name)
        if severity:
            labels.setdefault("severity", severity)
        try:
            _labels(labels, kind="label", limit=MAX_LABEL_VALUE)
        except ValueError as exc:
            raise InvalidInput(f"{path('labels')}: {exc}", field=path("labels")) from None
        if not labels:
            raise InvalidInput(
                f"{base or 'body'}: no labels and no name: nothing to identify the alert by",
                field=path("labels"),
                hint="map 'name' or 'labels' in the integration's mapping",
            )
        status_raw = dig(item, mapping.get("status", "status"))
        status_text = _scalar(status_raw, path("status")).strip().lower() or "firing"
        if status_text in FIRING_WORDS:
            status = AlertStatus.FIRING
        elif status_text in RESOLVED_WORDS:
            status = AlertStatus.RESOLVED
        else:
            raise InvalidInput(
                f"{path('status')}: unknown status {status_text[:40]!r}",
                field=path("status"),
                hint="use firing or resolved",
            )
        fp = _scalar(dig(item, mapping.get("fingerprint", "fingerprint")), path("fingerprint"))
        if len(fp) > MAX_FINGERPRINT:
            raise InvalidInput(f"{path('fingerprint')}: too long", field=path("fingerprint"))
        out.append(
            Normalized(
                fingerprint=fp or fingerprint_of(labels),
                status=status,
                labels=labels,
                annotations=annotations,
                name=labels.get("alertname", name),
                summary=" ".join(summary.split()) or annotations.get("summary", ""),
                source_severity=severity,
                generator_url=_scalar(
                    dig(item, mapping.get("url", "url")), path("url"), limit=4096
                ),
                starts_at=_time(
                    dig(item, mapping.get("starts_at", "starts_at")), path("starts_at")
                ),
                ends_at=_time(dig(item, mapping.get("ends_at", "ends_at")), path("ends_at")),
            )
        )
    return unique(out)
