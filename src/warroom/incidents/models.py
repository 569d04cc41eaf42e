"""Incident and timeline tables."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from warroom.store.base import Base


class Status(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    title: Mapped[str] = mapped_column(String(300))
    severity: Mapped[str] = mapped_column(String(4), index=True)
    status: Mapped[str] = mapped_column(String(20), default=Status.INVESTIGATING, index=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    customer_impact: Mapped[str] = mapped_column(Text, default="")
    services: Mapped[list[str]] = mapped_column(default=list)
    runbooks: Mapped[list[str]] = mapped_column(default=list)
    source: Mapped[str] = mapped_column(String(50), default="manual")  # manual|alert|drill
    is_drill: Mapped[bool] = mapped_column(Boolean, default=False)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    public_title: Mapped[str | None] = mapped_column(String(300))
    components: Mapped[list[str]] = mapped_column(default=list)  # status-page components hit
    # roles (person ids from config, or user names)
    commander: Mapped[str | None] = mapped_column(String(100))
    communications: Mapped[str | None] = mapped_column(String(100))
    scribe: Mapped[str | None] = mapped_column(String(100))
    responders: Mapped[list[str]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(String(100))
    # clocks
    detected_at: Mapped[datetime]
    declared_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    mitigated_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    respond_by: Mapped[datetime | None]
    breached_at: Mapped[datetime | None]
    # escalation state (the policy is snapshotted when escalation starts)
    escalation_policy: Mapped[str | None] = mapped_column(String(100))
    escalation_snapshot: Mapped[dict[str, Any] | None] = mapped_column()
    escalation_started_at: Mapped[datetime | None]
    escalation_level: Mapped[int] = mapped_column(Integer, default=-1)  # last level fired
    escalation_round: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None] = mapped_column(index=True)
    escalation_generation: Mapped[int] = mapped_column(Integer, default=0)
    # alert grouping
    group_key: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    events: Mapped[list[TimelineEvent]] = relationship(
        back_populates="incident", order_by="TimelineEvent.id", lazy="raise_on_sql"
    )

    __table_args__ = (Index("ix_incidents_group_open", "group_key", "status"),)

    @property
    def is_open(self) -> bool:
        return self.status != Status.RESOLVED


class TimelineEvent(Base):
    """Append-only record of everything that happened to an incident."""

    __tablename__ = "timeline_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(50), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    public: Mapped[bool] = mapped_column(Boolean, default=False)

    incident: Mapped[Incident] = relationship(back_populates="events", lazy="raise_on_sql")
