"""Alerts, stored once per (integration, fingerprint), and source heartbeats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from warroom.store.base import Base


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("integration_id", "fingerprint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    integration_id: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), index=True)  # firing|acknowledged|resolved
    name: Mapped[str] = mapped_column(String(300), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    annotations: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source_severity: Mapped[str] = mapped_column(String(50), default="")
    generator_url: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    count: Mapped[int] = mapped_column(Integer, default=1)
    group_key: Mapped[str] = mapped_column(String(300), default="", index=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    runbook_id: Mapped[str | None] = mapped_column(String(100))
    route_index: Mapped[int | None] = mapped_column(Integer)


class SourceHeartbeat(Base):
    """Last check-in of a heartbeat integration (cron job, Watchdog alert)."""

    __tablename__ = "source_heartbeats"
    integration_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_seen: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20), default="ok")  # ok|missed
    incident_id: Mapped[int | None] = mapped_column(Integer)
