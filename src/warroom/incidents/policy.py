"""Severity policy from config: respond-within clocks and which escalation policy applies."""

from __future__ import annotations

from datetime import datetime

from warroom.config.schema import Config, Severity, SeverityPolicy
from warroom.core.errors import InvalidInput

SEVERITIES = [s.value for s in Severity]


def parse_severity(value: str, *, field: str = "severity") -> Severity:
    """`P0`..`P3` (case-insensitive). Raises InvalidInput naming the allowed values."""
    try:
        return Severity(str(value).strip().upper())
    except ValueError:
        raise InvalidInput(
            f"unknown severity {value!r}", field=field, hint="use one of P0, P1, P2, P3"
        ) from None


def policy(config: Config, severity: str) -> SeverityPolicy:
    return config.severities[Severity(severity)]


def respond_by(config: Config, severity: str, start: datetime) -> datetime:
    return start + policy(config, severity).respond_within
