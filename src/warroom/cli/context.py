"""Helpers the CLI commands share: settings, runtime, API client (imported lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warroom.jobs.runtime import Runtime
    from warroom.settings import Settings


def settings(config: Path | None = None) -> Settings:
    from warroom import settings as s

    base = s.from_env()
    if config is not None:
        base = base.with_(config_path=config)
    return base


def runtime(config: Path | None = None, *, require_key: bool = False) -> Runtime:
    from warroom.bootstrap import build_runtime

    return build_runtime(settings(config), require_key=require_key)
