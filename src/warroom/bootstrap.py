"""Composition root: settings -> config -> database -> runtime -> registries.

Nothing here runs at import time; `build_runtime()` and `build_registry()`
are called by `warroom serve`, `warroom worker`, the CLI and the tests.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from sqlalchemy import MetaData

from warroom.config.loader import load_config, secret_values
from warroom.config.schema import Config
from warroom.core import faults
from warroom.core.clock import Clock, SystemClock
from warroom.core.logging import configure as configure_logging
from warroom.core.redact import Redactor
from warroom.jobs.runtime import Runtime
from warroom.jobs.worker import Registry
from warroom.settings import Settings, env, resolve_secret_key
from warroom.store.db import Database

# Every domain with tables; imported so their models register on Base.metadata.
MODEL_MODULES = (
    "warroom.store.models",
    "warroom.jobs.models",
    "warroom.auth.models",
    "warroom.incidents.models",
    "warroom.runbooks.models",
    "warroom.alerts.models",
    "warroom.notify.models",
    "warroom.oncall.models",
    "warroom.postmortems.models",
    "warroom.statuspage.models",
)

# Modules that expose `register(registry)` for their job kinds and sweeps.
JOB_MODULES: tuple[str, ...] = (
    "warroom.incidents.jobs",
    "warroom.alerts.jobs",
    "warroom.notify.jobs",
    "warroom.oncall.jobs",
    "warroom.postmortems.jobs",
)


def metadata() -> MetaData:
    from warroom.store.base import Base

    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata


def build_redactor(config: Config) -> Redactor:
    return Redactor(secrets=secret_values(config, env), extra_patterns=config.redact_patterns)


def build_runtime(
    settings: Settings,
    *,
    config: Config | None = None,
    clock: Clock | None = None,
    require_key: bool = True,
) -> Runtime:
    """Load config, open the database and assemble the runtime.

    Raises ConfigError / InvalidInput with a message for the operator.
    """
    metadata()
    cfg = config if config is not None else load_config(settings.config_path)
    if require_key:
        state_dir = _state_dir(settings)
        settings = resolve_secret_key(settings, state_dir=state_dir)
    faults.arm(settings.fault)
    redactor = build_redactor(cfg)
    configure_logging(level=settings.log_level, json=settings.log_json, redactor=redactor)
    db = Database(settings.database_url)
    return Runtime(
        settings=settings,
        db=db,
        config=cfg,
        redactor=redactor,
        clock=clock or SystemClock(),
        env=env,
    )


def build_registry() -> Registry:
    registry = Registry()
    for name in JOB_MODULES:
        importlib.import_module(name).register(registry)
    return registry


def _state_dir(settings: Settings) -> Path:
    url = settings.database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return Path(url.removeprefix("sqlite:///")).expanduser().resolve().parent
    return Path.cwd()
