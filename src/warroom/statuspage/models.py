"""Component states shown on the public status page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from warroom.store.base import Base


class ComponentState(Base):
    __tablename__ = "status_components"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    state: Mapped[str] = mapped_column(String(30), default="operational")
    # operational|degraded|partial_outage|major_outage|maintenance
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(100), default="")
