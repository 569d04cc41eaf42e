"""What handlers, services and routes share at run time: database, config, clock, redactor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from warroom.config.schema import Config
from warroom.core.clock import Clock, SystemClock
from warroom.core.redact import Redactor
from warroom.settings import Settings
from warroom.store.db import Database


@dataclass
class Runtime:
    settings: Settings
    db: Database
    config: Config
    redactor: Redactor
    clock: Clock = field(default_factory=SystemClock)
    env: Callable[[str], str | None] = lambda _name: None
    # registries filled by bootstrap (kind -> object); typed loosely to keep layers apart
    extras: dict[str, Any] = field(default_factory=dict)

    def now(self) -> Any:
        return self.clock.now()
